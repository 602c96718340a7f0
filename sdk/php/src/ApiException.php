<?php

declare(strict_types=1);

namespace Wshub;

/**
 * A reply of the server other than success. getStatus() is the HTTP status (400, 401, 403, 404,
 * 409, 413, 503, ...), getCode() the envelope's code, getMessage() its msg, which names the field
 * or the cause.
 */
final class ApiException extends \RuntimeException
{
    public function __construct(
        private readonly string $method,
        private readonly int $status,
        int $code,
        private readonly string $apiMessage,
    ) {
        parent::__construct("wshub {$method}: {$status} {$apiMessage}", $code);
    }

    public function getStatus(): int
    {
        return $this->status;
    }

    /** The REST method that answered, e.g. "send_to_client". */
    public function getMethod(): string
    {
        return $this->method;
    }

    /** The envelope's msg as the server wrote it. */
    public function getApiMessage(): string
    {
        return $this->apiMessage;
    }
}
