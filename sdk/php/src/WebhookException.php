<?php

declare(strict_types=1);

namespace Wshub;

/** Why Webhook::verify refused a batch: getReason() is BAD_SIGNATURE, STALE or MALFORMED. */
final class WebhookException extends \RuntimeException
{
    public const BAD_SIGNATURE = 'bad_signature';
    public const STALE = 'stale_timestamp';
    public const MALFORMED = 'malformed_body';

    public function __construct(private readonly string $reason, string $message)
    {
        parent::__construct($message);
    }

    public function getReason(): string
    {
        return $this->reason;
    }
}
