<?php

// Router for `php -S`: records each request as one JSON line in $RECEIVER_LOG. With
// $RECEIVER_FAIL_FIRST=n, the first n requests get 503 (a busy backend, or a proxy in front
// of wshub: the body is wshub's error envelope), the rest 204 or $RECEIVER_BODY with 200.
$log = getenv('RECEIVER_LOG');
$headers = [];
foreach ($_SERVER as $name => $value) {
    if (str_starts_with($name, 'HTTP_')) {
        $headers[str_replace('_', '-', substr($name, 5))] = $value;
    }
}
$line = json_encode(['headers' => $headers, 'body' => file_get_contents('php://input')]);
file_put_contents($log, $line . "\n", FILE_APPEND | LOCK_EX);
$seen = count(file($log));
header('Content-Type: application/json');
if ($seen <= (int) getenv('RECEIVER_FAIL_FIRST')) {
    http_response_code(503);
    echo '{"code":-1,"msg":"overloaded","data":[]}';
    return;
}
$body = getenv('RECEIVER_BODY');
if ($body === false || $body === '') {
    http_response_code(204);
    return;
}
echo $body;
