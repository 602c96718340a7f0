<?php

declare(strict_types=1);

namespace Wshub;

/** get_system's reply. The webhook's secret is never shown. */
final class SystemInfo
{
    /**
     * @param array{url: string, events: list<string>}|null $webhook
     * @param array{events: list<string>}|null $mqtt
     * @param string $presence 'client' or 'user'
     */
    public function __construct(
        public readonly string $systemId,
        public readonly int $registeredAt,
        public readonly int $clients,
        public readonly ?array $webhook,
        public readonly ?array $mqtt,
        public readonly string $presence,
    ) {
    }
}
