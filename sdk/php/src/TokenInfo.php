<?php

declare(strict_types=1);

namespace Wshub;

/** check_token's reply: the system the token is scoped to, null for an admin token. */
final class TokenInfo
{
    public function __construct(public readonly ?string $systemId)
    {
    }

    public function isAdmin(): bool
    {
        return $this->systemId === null;
    }
}
