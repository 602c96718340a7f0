<?php

declare(strict_types=1);

// Composer's autoloader when installed, else the same PSR-4 mapping by hand (the SDK has no
// dependencies, so the tests run with a bare php-cli).
if (is_file(__DIR__ . '/../vendor/autoload.php')) {
    require __DIR__ . '/../vendor/autoload.php';
} else {
    spl_autoload_register(static function (string $class): void {
        if (str_starts_with($class, 'Wshub\\')) {
            $file = __DIR__ . '/../src/' . str_replace('\\', '/', substr($class, 6)) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}
require __DIR__ . '/WsClient.php';
