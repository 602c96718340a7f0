<?php

declare(strict_types=1);

// The PHP SDK's tests, against a live wshub: WSHUB_URL and its WSHUB_JWT_SECRET (wshub's own
// `cargo test` starts one and sets both). Prints one line per test, then "N passed, N failed".

require __DIR__ . '/bootstrap.php';

use Wshub\ApiException;
use Wshub\Client;
use Wshub\Tests\WsClient;
use Wshub\Token;
use Wshub\Webhook;
use Wshub\WebhookException;

$baseUrl = (string) getenv('WSHUB_URL');
$secret = (string) getenv('WSHUB_JWT_SECRET');
if ($baseUrl === '' || $secret === '') {
    if (getenv('CI') === 'true') {
        fwrite(STDERR, "CI=true needs WSHUB_URL and WSHUB_JWT_SECRET: a running wshub and its secret\n");
        exit(1);
    }
    echo "SKIPPED: set WSHUB_URL and WSHUB_JWT_SECRET to run against a live wshub\n";
    exit(0);
}

function check(bool $condition, string $what, mixed ...$shown): void
{
    if (!$condition) {
        throw new \RuntimeException($what . ($shown ? ': ' . json_encode($shown, JSON_UNESCAPED_SLASHES) : ''));
    }
}

/** The ApiException $call throws (fails the test if it throws none). */
function apiError(callable $call): ApiException
{
    try {
        $call();
    } catch (ApiException $e) {
        return $e;
    }
    throw new \RuntimeException('no ApiException');
}

function unique(string $prefix): string
{
    return $prefix . '-' . bin2hex(random_bytes(6));
}

/** A fresh system on the live server, and the client that registered it. */
function registered(): array
{
    global $baseUrl, $secret;
    $client = new Client($baseUrl, secret: $secret);
    $id = unique('php');
    $client->register($id);
    return [$client, $client->system($id)];
}

/** `php -S` on a free port running receiver.php; returns [url, log file, stop]. */
function receiver(int $failFirst = 0, string $body = ''): array
{
    $probe = stream_socket_server('tcp://127.0.0.1:0');
    $address = stream_socket_get_name($probe, false);
    fclose($probe);
    $log = tempnam(sys_get_temp_dir(), 'wshub-receiver');
    $env = getenv() + ['RECEIVER_LOG' => $log, 'RECEIVER_FAIL_FIRST' => (string) $failFirst, 'RECEIVER_BODY' => $body];
    $process = proc_open([PHP_BINARY, '-S', $address, __DIR__ . '/receiver.php'], [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes, null, $env);
    for ($i = 0; $i < 100 && !@fsockopen('tcp://' . $address); $i++) {
        usleep(50_000);
    }
    $stop = static function () use ($process, $log): void {
        proc_terminate($process);
        proc_close($process);
        @unlink($log);
    };
    return ["http://{$address}", $log, $stop];
}

/** The requests the receiver got, waiting up to $timeout seconds for at least $count. */
function received(string $log, int $count, float $timeout = 10.0): array
{
    $deadline = microtime(true) + $timeout;
    do {
        $lines = array_values(array_filter(explode("\n", (string) file_get_contents($log))));
        if (count($lines) >= $count) {
            return array_map(fn ($line) => json_decode($line, true), $lines);
        }
        usleep(50_000);
    } while (microtime(true) < $deadline);
    throw new \RuntimeException("{$count} requests expected, " . count($lines) . ' arrived');
}

$tests = [];

$tests['minted tokens are admin or scoped'] = function () use ($baseUrl, $secret): void {
    $admin = new Client($baseUrl, token: Token::mint($secret));
    check($admin->checkToken()->isAdmin(), 'an admin token');

    $id = unique('scoped');
    $scoped = new Client($baseUrl, token: Token::mint($secret, $id, 60));
    $info = $scoped->checkToken();
    check($info->systemId === $id && !$info->isAdmin(), 'a scoped token', $info);
    $scoped->register($id);
    $e = apiError(fn () => $scoped->register(unique('other')));
    check($e->getStatus() === 403, 'a scoped token registering another system', $e->getMessage());
    check($scoped->system($id)->getSystem()->systemId === $id, 'its own system');

    foreach ([[$secret, 0], ['', 60]] as [$key, $ttl]) {
        try {
            Token::mint($key, null, $ttl);
            check(false, 'a token minted with ttl 0 or no secret');
        } catch (\InvalidArgumentException) {
        }
    }
};

$tests['every message and group method'] = function () use ($baseUrl): void {
    [, $s] = registered();
    $ann = new WsClient($baseUrl, $s->systemId);
    $bob = new WsClient($baseUrl, $s->systemId);

    $s->bindToGroup($ann->clientId, 'room', 'u-ann', '{"nick":"Ann"}');
    $s->bindToGroup($bob->clientId, 'room', userId: 'u-bob');
    check($ann->readFrame()['code'] === 1001 && $ann->readFrame()['code'] === 1001, 'ann sees both joins');
    check($bob->readFrame()['code'] === 1001, 'bob sees his join');

    $list = $s->getOnlineList('room');
    $ids = $list->list;
    sort($ids);
    $want = [$ann->clientId, $bob->clientId];
    sort($want);
    check($list->count === 2 && $ids === $want && count($list->clients) === 2, 'online list', $list);
    foreach ($list->clients as $member) {
        if ($member['clientId'] === $ann->clientId) {
            check($member['userId'] === 'u-ann' && $member['extend'] === '{"nick":"Ann"}', 'ann as a member', $member);
        }
    }
    $empty = $s->getOnlineList('nobody-here');
    check($empty->count === 0 && $empty->list === [], 'an empty group', $empty);

    $groups = $s->getAllGroups();
    check(array_keys($groups) === ['room'] && count($groups['room']) === 2, 'all groups', $groups);

    $info = $s->getClientInfo($ann->clientId);
    check($info->online && $info->connected && $info->userId === 'u-ann' && $info->groups === ['room'] && $info->connectedAt > 0, "ann's info", $info);

    $toUser = $s->sendToUser('u-ann', 'for ann', ['x']);
    $frame = $ann->readFrame();
    check($toUser->count === 1 && $frame['messageId'] === $toUser->messageId && $frame['data'] === ['x'], 'send_to_user', $toUser, $frame);
    check($s->sendToUser('nobody', 'x')->count === 0, 'send_to_user to nobody');
    $user = $s->getUserInfo('u-ann');
    check($user->online && $user->userId === 'u-ann' && count($user->clients) === 1 && $user->clients[0]['clientId'] === $ann->clientId
        && $user->clients[0]['connected'] && $user->groups === ['room'], 'get_user_info', $user);

    $first = $s->getOnlineUsers('room', limit: 1);
    $second = $s->getOnlineUsers('room', $first->cursor, 1);
    check($first->users === [['userId' => 'u-ann', 'clients' => 1]] && $first->userCount === 2 && $first->clientCount === 2
        && $first->cursor !== null && $second->users === [['userId' => 'u-bob', 'clients' => 1]] && $second->cursor === null,
        'get_online_users', $first, $second);
    $everyone = $s->listClients();
    check(count($everyone->clients) === 2 && $everyone->cursor === null, 'list_clients', $everyone);
    check(apiError(fn () => $s->listClients($first->cursor))->getStatus() === 400, "another query's cursor");
    $users = array_column(iterator_to_array($s->eachOnlineUser('room', 1), false), 'userId');
    check($users === ['u-ann', 'u-bob'], 'eachOnlineUser walks the pages', $users);
    check(count(iterator_to_array($s->eachClient(1), false)) === 2, 'eachClient walks the pages');

    $sent = $s->sendToClient($ann->clientId, 'hi', ['n' => 1], code: 7, sendUserId: 'u-bob');
    $frame = $ann->readFrame();
    check($sent->count === 1 && $frame['messageId'] === $sent->messageId && $frame['msg'] === 'hi' && $frame['code'] === 7
        && $frame['sendUserId'] === 'u-bob' && $frame['data'] === ['n' => 1], 'send_to_client', $sent, $frame);

    $many = $s->sendToClients([$ann->clientId, 'not-connected'], 'some', 'text');
    check($many->missing === ['not-connected'] && $many->messageId !== '', 'send_to_clients', $many);
    $frame = $ann->readFrame();
    check($frame['messageId'] === $many->messageId && $frame['data'] === 'text', "send_to_clients' frame", $frame);

    $toGroup = $s->sendToGroup('room', 'group', [1, 2]);
    check($toGroup->count === 2, 'send_to_group', $toGroup);
    foreach ([$ann, $bob] as $conn) {
        $frame = $conn->readFrame();
        check($frame['messageId'] === $toGroup->messageId && $frame['data'] === [1, 2], "send_to_group's frame", $frame);
    }

    $toSystem = $s->sendToSystem('everyone');
    check($toSystem->count === 2, 'send_to_system', $toSystem);
    foreach ([$ann, $bob] as $conn) {
        $frame = $conn->readFrame();
        check($frame['messageId'] === $toSystem->messageId && $frame['msg'] === 'everyone', "send_to_system's frame", $frame);
    }

    $s->unbindFromGroup($bob->clientId, 'room');
    check($ann->readFrame()['code'] === 1002, 'the 1002 for bob');
    check($s->getOnlineList('room')->count === 1, 'after the unbind');

    $s->closeClient($bob->clientId);
    check($bob->readCloseCode() === 1000, 'close_client closes with 1000');
    check($s->closeUser('u-ann') === 1, 'close_user');
    check($ann->readCloseCode() === 1000, 'close_user closes with 1000');
    $user = $s->getUserInfo('u-ann');
    check(!$user->online && $user->clients === [], 'a closed user', $user);
    $gone = $s->getClientInfo($bob->clientId);
    check(!$gone->online && $gone->clientId === $bob->clientId, "a closed client's info", $gone);
};

$tests['system settings and unregister'] = function () use ($baseUrl): void {
    [$client, $s] = registered();
    $conn = new WsClient($baseUrl, $s->systemId);
    $hook = ['url' => 'http://127.0.0.1:9/hook', 'secret' => 'sixteen-chars-or-more', 'events' => ['client_online']];
    $s->updateSystem(webhook: $hook, mqtt: ['events' => ['group_joined']]);
    $info = $s->getSystem();
    check($info->systemId === $s->systemId && $info->clients === 1 && $info->registeredAt > 0
        && $info->webhook === ['url' => $hook['url'], 'events' => ['client_online']]
        && $info->mqtt === ['events' => ['group_joined']], 'get_system', $info);

    $s->updateSystem(webhook: null);
    $info = $s->getSystem();
    check($info->webhook === null && $info->mqtt !== null, 'the webhook removed, MQTT kept', $info);
    check(apiError(fn () => $s->updateSystem())->getStatus() === 400, 'an update that changes nothing');
    check($info->presence === 'client', 'presence by default', $info);
    $s->updateSystem(presence: 'user');
    $info = $s->getSystem();
    check($info->presence === 'user' && $info->mqtt !== null, 'presence set, MQTT kept', $info);

    $other = unique('php-settings');
    $client->register($other, mqtt: ['events' => ['client_online']], presence: 'user');
    $info = $client->system($other)->getSystem();
    check($info->mqtt === ['events' => ['client_online']] && $info->webhook === null
        && $info->presence === 'user', 'register with settings', $info);

    $s->unregister();
    check($conn->readCloseCode() === 4001, 'unregister closes the clients with 4001');
    check(apiError(fn () => $s->getSystem())->getStatus() === 403, 'a removed system');
};

$tests['errors carry status, code and message'] = function () use ($baseUrl): void {
    [$client, $s] = registered();
    $e = apiError(fn () => (new Client($baseUrl, token: 'not-a-token'))->checkToken());
    check($e->getStatus() === 401 && $e->getCode() !== 0 && $e->getApiMessage() !== '' && $e->getMethod() === 'check_token', '401', $e->getMessage());
    $e = apiError(fn () => (new Client($baseUrl, secret: 'another secret altogether'))->system($s->systemId)->closeClient('x'));
    check($e->getStatus() === 401, 'a token from the wrong secret', $e->getMessage());

    $e = apiError(fn () => $s->sendToClient('not-connected', 'hi'));
    check($e->getStatus() === 404 && str_contains($e->getApiMessage(), 'not-connected'), '404', $e->getMessage());

    $e = apiError(fn () => $s->sendToSystem('big', str_repeat('x', 2 << 20)));
    check($e->getStatus() === 413, '413', $e->getMessage());

    check(apiError(fn () => $client->register($s->systemId))->getStatus() === 409, '409');
    $e = apiError(fn () => $s->sendToGroup('', 'no group'));
    check($e->getStatus() === 400 && str_contains($e->getApiMessage(), 'groupName'), '400 naming the field', $e->getMessage());
    check(apiError(fn () => $client->system(unique('never-registered'))->getAllGroups())->getStatus() === 403, '403');
};

$tests['webhook verification: valid, tampered, stale'] = function () use ($baseUrl): void {
    [, $s] = registered();
    [$url, $log, $stop] = receiver();
    try {
        $webhookSecret = 'a-webhook-secret-of-some-length';
        $s->updateSystem(webhook: ['url' => $url, 'secret' => $webhookSecret, 'events' => ['client_online']]);
        $conn = new WsClient($baseUrl, $s->systemId);
        [$request] = received($log, 1);
        [$headers, $body] = [$request['headers'], $request['body']];

        $batch = Webhook::verify($webhookSecret, $headers, $body);
        $event = $batch['events'][0] ?? [];
        check($batch['systemId'] === $s->systemId && count($batch['events']) === 1 && $event['name'] === 'client_online'
            && $event['clientId'] === $conn->clientId && $event['id'] !== '' && $batch['dropped'] === 0, 'the batch', $batch);
        // Header names in any case, values as lists: Laravel's $request->header().
        $laravelShaped = array_combine(array_map('strtolower', array_keys($headers)), array_map(fn ($v) => [$v], $headers));
        check(Webhook::verify($webhookSecret, $laravelShaped, $body)['systemId'] === $s->systemId, 'lower-case headers with list values');

        $refusals = [
            'a tampered body' => [WebhookException::BAD_SIGNATURE, $webhookSecret, $headers, str_replace($conn->clientId, 'someone-else', $body), 300],
            'another secret' => [WebhookException::BAD_SIGNATURE, 'another-secret-entirely', $headers, $body, 300],
            'no signature' => [WebhookException::BAD_SIGNATURE, $webhookSecret, ['X-Wshub-Timestamp' => $headers['X-WSHUB-TIMESTAMP']], $body, 300],
            'a fresh timestamp on an old signature' => [WebhookException::BAD_SIGNATURE, $webhookSecret, ['X-Wshub-Timestamp' => (string) (time() + 1)] + $headers, $body, 300],
            'a stale batch' => [WebhookException::STALE, $webhookSecret, ['X-WSHUB-TIMESTAMP' => (string) (time() - 301), 'X-WSHUB-SIGNATURE' => 'sha256=' . hash_hmac('sha256', (time() - 301) . '.' . $body, $webhookSecret)], $body, 300],
        ];
        foreach ($refusals as $what => [$reason, $key, $h, $b, $tolerance]) {
            try {
                Webhook::verify($key, $h, $b, $tolerance);
                check(false, "{$what} is accepted");
            } catch (WebhookException $e) {
                check($e->getReason() === $reason, $what, $e->getReason());
            }
        }
        // The genuine batch, judged later than its tolerance allows.
        sleep(2);
        try {
            Webhook::verify($webhookSecret, $headers, $body, 1);
            check(false, 'a genuine batch past its tolerance is accepted');
        } catch (WebhookException $e) {
            check($e->getReason() === WebhookException::STALE, 'a genuine batch past its tolerance', $e->getReason());
        }
        $conn->close();
    } finally {
        $stop();
    }
};

$tests['reads are retried, writes are not'] = function (): void {
    [$url, $log, $stop] = receiver(2, '{"code":0,"msg":"success","data":{"count":0,"list":[],"clients":[]}}');
    try {
        $s = (new Client($url))->system('demo');
        check($s->getOnlineList('g')->count === 0, 'a read after two 503s');
        check(count(received($log, 3)) === 3, 'three attempts');
    } finally {
        $stop();
    }
    [$url, $log, $stop] = receiver(5);
    try {
        $s = (new Client($url, retries: 0))->system('demo');
        check(apiError(fn () => $s->bindToGroup('c', 'g'))->getStatus() === 503, 'a write answered 503');
        check(apiError(fn () => $s->getOnlineList('g'))->getStatus() === 503, 'a read without retries');
        usleep(200_000);
        check(count(received($log, 2)) === 2, 'one attempt each');
    } finally {
        $stop();
    }
    // A server that accepts the connection and never answers.
    $silent = stream_socket_server('tcp://127.0.0.1:0');
    $started = microtime(true);
    try {
        (new Client('http://' . stream_socket_get_name($silent, false), timeout: 0.3, retries: 0))->checkToken();
        check(false, 'an unreachable server answers');
    } catch (\Wshub\TransportException) {
        check(microtime(true) - $started < 2, 'the timeout bounds the call');
    }
};

$tests['the Laravel example joins and says'] = function () use ($baseUrl, $secret): void {
    require_once __DIR__ . '/laravel_stand_ins.php';
    require_once __DIR__ . '/../examples/laravel/app/Http/Controllers/ChatController.php';
    [, $system] = registered();
    $controller = new \App\Http\Controllers\ChatController($system);
    $browser = new WsClient($baseUrl, $system->systemId);
    $ann = (object) ['id' => 42, 'name' => 'Ann'];

    $reply = $controller->join(new \Illuminate\Http\Request(['clientId' => $browser->clientId, 'room' => 'lobby'], $ann));
    check($reply === ['joined' => true], 'join', $reply);
    $notice = $browser->readFrame();
    check($notice['code'] === 1001 && $notice['sendUserId'] === '42', 'the join notice', $notice);
    $reply = $controller->say(new \Illuminate\Http\Request(['room' => 'lobby', 'text' => 'hello'], $ann));
    check($reply === ['delivered' => 1], 'say', $reply);
    $frame = $browser->readFrame();
    check($frame['msg'] === 'chat' && $frame['data'] === ['from' => '42', 'text' => 'hello'], 'the line', $frame);
    $reply = $controller->join(new \Illuminate\Http\Request(['clientId' => 'gone', 'room' => 'lobby'], $ann));
    check($reply === ['joined' => false, 'reconnect' => true], 'a stale clientId', $reply);
    $browser->close();
};

$passed = $failed = 0;
foreach ($tests as $name => $test) {
    try {
        $test();
        $passed++;
        echo "ok   {$name}\n";
    } catch (\Throwable $e) {
        $failed++;
        echo "FAIL {$name}: " . get_class($e) . ': ' . $e->getMessage() . ' at ' . basename($e->getFile()) . ':' . $e->getLine() . "\n";
    }
}
echo "{$passed} passed, {$failed} failed\n";
exit($failed === 0 ? 0 : 1);
