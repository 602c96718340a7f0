<?php

declare(strict_types=1);

namespace Wshub;

/**
 * get_user_info's reply: the user's connections, oldest first, and every group any of them is
 * in. online is true while any of them is connected.
 */
final class UserInfo
{
    /**
     * @param list<array{clientId: string, groups: list<string>, connectedAt: int, connected: bool, extend: string}> $clients
     * @param list<string> $groups
     */
    public function __construct(
        public readonly bool $online,
        public readonly string $userId,
        public readonly array $clients,
        public readonly array $groups,
    ) {
    }
}
