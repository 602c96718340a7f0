<?php

namespace App\Providers;

use Illuminate\Support\ServiceProvider;
use Wshub\Client;
use Wshub\System;

/** Makes Wshub\Client and the app's Wshub\System injectable (add it to bootstrap/providers.php). */
class WshubServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->app->singleton(Client::class, fn () => new Client(
            config('services.wshub.url'),
            secret: config('services.wshub.secret'),
        ));
        $this->app->singleton(System::class, fn ($app) => $app->make(Client::class)->system(config('services.wshub.system')));
    }
}
