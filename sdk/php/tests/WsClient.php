<?php

declare(strict_types=1);

namespace Wshub\Tests;

/**
 * A minimal WebSocket client for the tests: connects to wshub as a browser would, reads pushed
 * frames and close codes. PHP has no WebSocket client built in, and the SDK is REST only.
 */
final class WsClient
{
    /** @var resource */
    private $socket;
    public readonly string $clientId;

    public function __construct(string $baseUrl, string $systemId)
    {
        $host = parse_url($baseUrl, PHP_URL_HOST);
        $port = parse_url($baseUrl, PHP_URL_PORT);
        $socket = stream_socket_client("tcp://{$host}:{$port}", $errno, $error, 5);
        if ($socket === false) {
            throw new \RuntimeException("connect: {$error}");
        }
        $this->socket = $socket;
        $key = base64_encode(random_bytes(16));
        fwrite($socket, "GET /ws?systemId=" . rawurlencode($systemId) . " HTTP/1.1\r\nHost: {$host}:{$port}\r\n"
            . "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {$key}\r\nSec-WebSocket-Version: 13\r\n\r\n");
        stream_set_timeout($socket, 5);
        $status = (string) fgets($socket);
        if (!str_contains($status, ' 101 ')) {
            throw new \RuntimeException("upgrade refused: {$status}");
        }
        while (($line = fgets($socket)) !== false && rtrim($line) !== '') {
        }
        $welcome = json_decode($this->readText(), true);
        if (($welcome['code'] ?? -1) !== 0) {
            throw new \RuntimeException('refused: ' . json_encode($welcome));
        }
        $this->clientId = $welcome['data']['clientId'];
    }

    /** The next pushed frame, decoded. */
    public function readFrame(float $timeout = 5.0): array
    {
        return json_decode($this->readText($timeout), true, 512, JSON_THROW_ON_ERROR);
    }

    /** The code of the close frame the server sends next (null: the connection just ended). */
    public function readCloseCode(float $timeout = 5.0): ?int
    {
        try {
            $text = $this->readText($timeout);
        } catch (Closed $closed) {
            return $closed->closeCode;
        }
        throw new \RuntimeException("a frame instead of a close: {$text}");
    }

    public function readText(float $timeout = 5.0): string
    {
        stream_set_timeout($this->socket, (int) $timeout, (int) (fmod($timeout, 1.0) * 1e6));
        while (true) {
            $head = $this->read(2);
            $opcode = ord($head[0]) & 0x0f;
            $length = ord($head[1]) & 0x7f;
            if ($length === 126) {
                $length = unpack('n', $this->read(2))[1];
            } elseif ($length === 127) {
                $length = unpack('J', $this->read(8))[1];
            }
            $payload = $length > 0 ? $this->read($length) : '';
            if ($opcode === 0x1) {
                return $payload;
            }
            if ($opcode === 0x8) {
                throw new Closed(strlen($payload) >= 2 ? unpack('n', $payload)[1] : null);
            }
        }
    }

    private function read(int $length): string
    {
        $bytes = '';
        while (strlen($bytes) < $length) {
            $chunk = fread($this->socket, $length - strlen($bytes));
            if ($chunk === false || $chunk === '') {
                if (stream_get_meta_data($this->socket)['timed_out']) {
                    throw new \RuntimeException('no frame in time');
                }
                throw new Closed(null);
            }
            $bytes .= $chunk;
        }
        return $bytes;
    }

    public function close(): void
    {
        fclose($this->socket);
    }
}

final class Closed extends \RuntimeException
{
    public function __construct(public readonly ?int $closeCode)
    {
        parent::__construct('closed with ' . ($closeCode ?? 'no close frame'));
    }
}
