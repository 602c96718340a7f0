<?php

declare(strict_types=1);

namespace Wshub;

/** get_online_list's reply. */
final class OnlineList
{
    /**
     * @param list<string> $list the members' clientIds
     * @param list<array{clientId: string, userId: string, extend: string}> $clients
     */
    public function __construct(
        public readonly int $count,
        public readonly array $list,
        public readonly array $clients,
    ) {
    }
}
