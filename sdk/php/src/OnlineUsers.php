<?php

declare(strict_types=1);

namespace Wshub;

/**
 * One page of get_online_users: users in userId order with their connection counts; userCount
 * and clientCount are totals of the whole query; cursor is null on the last page.
 */
final class OnlineUsers
{
    /** @param list<array{userId: string, clients: int}> $users */
    public function __construct(
        public readonly array $users,
        public readonly int $userCount,
        public readonly int $clientCount,
        public readonly ?string $cursor,
    ) {
    }
}
