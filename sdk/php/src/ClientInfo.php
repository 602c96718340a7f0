<?php

declare(strict_types=1);

namespace Wshub;

/**
 * get_client_info's reply. online is false for a client that is gone (the rest then empty);
 * connected is false while a recovery client is away.
 */
final class ClientInfo
{
    /** @param list<string> $groups */
    public function __construct(
        public readonly bool $online,
        public readonly bool $connected,
        public readonly string $clientId,
        public readonly string $userId,
        public readonly string $extend,
        public readonly array $groups,
        public readonly int $connectedAt,
    ) {
    }
}
