<?php

declare(strict_types=1);

namespace Wshub;

/**
 * A client of one wshub server: new Client($baseUrl, token: $t) with a token from
 * `wshub token`, or secret: $s to mint its own short-lived admin tokens.
 */
final class Client
{
    /** Calls that only read, retried after a transport error or a 502/503/504. */
    private const READS = ['check_token', 'get_system', 'get_online_list', 'get_all_groups', 'get_client_info', 'get_user_info', 'get_online_users', 'list_clients'];
    /** A minted token is replaced this many seconds before it expires. */
    private const TOKEN_REFRESH_MARGIN = 30;
    private const FIRST_RETRY_DELAY_MS = 100;

    private readonly string $baseUrl;
    private ?string $minted = null;
    private int $mintedUntil = 0;

    /**
     * @param float $timeout seconds one attempt may take
     * @param int $retries how many times a read is retried (never a call that changes state:
     *        a retry could apply it twice)
     * @param int $tokenTtl seconds a token minted from $secret lives
     */
    public function __construct(
        string $baseUrl,
        private readonly ?string $token = null,
        private readonly ?string $secret = null,
        private readonly float $timeout = 10.0,
        private readonly int $retries = 2,
        private readonly int $tokenTtl = 600,
    ) {
        $this->baseUrl = rtrim($baseUrl, '/');
    }

    /** Which systems the token acts for (401 for a bad token). */
    public function checkToken(): TokenInfo
    {
        $data = $this->call('check_token', null, []);
        return new TokenInfo($data['systemId'] ?? null);
    }

    /**
     * Registers a system (409 if it exists), with its settings if given.
     * @param array{url: string, secret: string, events?: list<string>}|null $webhook
     * @param array{events: list<string>}|null $mqtt
     * @param string|null $presence 'client' (the default) or 'user': whom a group's 1001/1002 are about
     */
    public function register(string $systemId, ?array $webhook = null, ?array $mqtt = null, ?string $presence = null): void
    {
        $body = ['systemId' => $systemId];
        if ($webhook !== null) {
            $body['webhook'] = $webhook;
        }
        if ($mqtt !== null) {
            $body['mqtt'] = $mqtt;
        }
        if ($presence !== null) {
            $body['presence'] = $presence;
        }
        $this->call('register', null, $body);
    }

    /** The methods of one system (every method with the SystemId header). Makes no call. */
    public function system(string $systemId): System
    {
        return new System($this, $systemId);
    }

    /**
     * Posts $body to /api/$method and returns the reply's data (decoded as arrays).
     * @throws ApiException the server answered an error
     * @throws TransportException the server could not be reached
     */
    public function call(string $method, ?string $systemId, array $body): mixed
    {
        $payload = json_encode(
            $body === [] ? new \stdClass() : $body,
            JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION,
        );
        $attempts = in_array($method, self::READS, true) ? 1 + $this->retries : 1;
        $delayMs = self::FIRST_RETRY_DELAY_MS;
        for ($attempt = 1; ; $attempt++) {
            try {
                return $this->attempt($method, $systemId, $payload);
            } catch (TransportException | ApiException $e) {
                $retryable = $e instanceof TransportException || in_array($e->getStatus(), [502, 503, 504], true);
                if (!$retryable || $attempt >= $attempts) {
                    throw $e;
                }
                usleep($delayMs * 1000);
                $delayMs *= 2;
            }
        }
    }

    private function attempt(string $method, ?string $systemId, string $payload): mixed
    {
        $headers = ['Content-Type: application/json', 'Expect:'];
        if ($systemId !== null) {
            $headers[] = 'SystemId: ' . $systemId;
        }
        $bearer = $this->bearer();
        if ($bearer !== null) {
            $headers[] = 'Authorization: Bearer ' . $bearer;
        }
        $curl = curl_init($this->baseUrl . '/api/' . $method);
        curl_setopt_array($curl, [
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $payload,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => (int) ($this->timeout * 1000),
            CURLOPT_CONNECTTIMEOUT_MS => (int) ($this->timeout * 1000),
        ]);
        $raw = curl_exec($curl);
        if ($raw === false) {
            $error = curl_error($curl);
            curl_close($curl);
            throw new TransportException("wshub {$method}: {$error}");
        }
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        $reply = json_decode((string) $raw, true);
        if (!is_array($reply) || !array_key_exists('code', $reply)) {
            // Not wshub's envelope (a proxy's error page, say): the status and the body's start.
            throw new ApiException($method, $status, -1, substr((string) $raw, 0, 200));
        }
        if ($status !== 200 || $reply['code'] !== 0) {
            throw new ApiException($method, $status, (int) $reply['code'], (string) ($reply['msg'] ?? ''));
        }
        return $reply['data'] ?? null;
    }

    /** The token a call carries: the given one, else one minted from the secret, else none. */
    private function bearer(): ?string
    {
        if ($this->token !== null || $this->secret === null) {
            return $this->token;
        }
        $now = time();
        if ($this->minted === null || $now >= $this->mintedUntil) {
            $this->minted = Token::mint($this->secret, null, $this->tokenTtl);
            $this->mintedUntil = $now + $this->tokenTtl - self::TOKEN_REFRESH_MARGIN;
        }
        return $this->minted;
    }
}
