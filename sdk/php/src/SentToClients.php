<?php

declare(strict_types=1);

namespace Wshub;

/** send_to_clients' reply: one messageId for all, and the ids that are not connected. */
final class SentToClients
{
    /** @param list<string> $missing */
    public function __construct(public readonly string $messageId, public readonly array $missing)
    {
    }
}
