<?php

declare(strict_types=1);

namespace Wshub;

/** One page of list_clients, in clientId order; cursor is null on the last page. */
final class ListedClients
{
    /** @param list<array{clientId: string, userId: string, groups: list<string>, connectedAt: int, connected: bool}> $clients */
    public function __construct(public readonly array $clients, public readonly ?string $cursor)
    {
    }
}
