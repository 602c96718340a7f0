<?php

declare(strict_types=1);

namespace Wshub;

/** API and client tokens (HS256 JWTs) minted from the server's JWT secret. */
final class Token
{
    /**
     * Mints a token that expires after $ttl seconds. Without $systemId it is an admin token
     * (every system); with one it acts for that system only. $userId makes it a client token
     * carrying that user, for servers run with --client-auth jwt.
     */
    public static function mint(string $secret, ?string $systemId = null, int $ttl = 600, ?string $userId = null): string
    {
        if ($secret === '') {
            throw new \InvalidArgumentException('minting a token needs the server\'s secret');
        }
        if ($ttl <= 0) {
            throw new \InvalidArgumentException('a token\'s ttl must be positive');
        }
        $now = time();
        $claims = ['iat' => $now, 'exp' => $now + $ttl];
        if ($systemId !== null && $systemId !== '') {
            $claims['systemId'] = $systemId;
        }
        if ($userId !== null && $userId !== '') {
            $claims['userId'] = $userId;
        }
        $input = self::base64url(json_encode(['alg' => 'HS256', 'typ' => 'JWT'], JSON_THROW_ON_ERROR))
            . '.' . self::base64url(json_encode($claims, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE));
        return $input . '.' . self::base64url(hash_hmac('sha256', $input, $secret, true));
    }

    private static function base64url(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }
}
