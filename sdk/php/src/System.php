<?php

declare(strict_types=1);

namespace Wshub;

/**
 * Every REST method that acts on one system (sent with its SystemId header). $data in the sends
 * is any value json_encode takes; the browser receives it as that JSON value (an associative
 * array becomes an object). A null $data is not sent.
 */
final class System
{
    public function __construct(private readonly Client $client, public readonly string $systemId)
    {
    }

    /**
     * Replaces or removes the system's settings: an array replaces a setting whole (the webhook's
     * secret included), null removes it, an omitted one stays; $presence ('client' or 'user')
     * is set when given. At least one is needed (else 400).
     */
    public function updateSystem(
        array|null|Unchanged $webhook = Unchanged::Keep,
        array|null|Unchanged $mqtt = Unchanged::Keep,
        ?string $presence = null,
    ): void {
        $body = [];
        if (!$webhook instanceof Unchanged) {
            $body['webhook'] = $webhook;
        }
        if (!$mqtt instanceof Unchanged) {
            $body['mqtt'] = $mqtt;
        }
        if ($presence !== null) {
            $body['presence'] = $presence;
        }
        $this->call('update_system', $body);
    }

    public function getSystem(): SystemInfo
    {
        $d = $this->call('get_system', []);
        return new SystemInfo(
            $d['systemId'],
            (int) $d['registeredAt'],
            (int) $d['clients'],
            $d['webhook'] ?? null,
            $d['mqtt'] ?? null,
            $d['presence'] ?? 'client',
        );
    }

    /** Removes the system: its clients are closed with 4001, its groups and settings go. */
    public function unregister(): void
    {
        $this->call('unregister', []);
    }

    /** Sends a frame to one connected client (404 if it is not); the Sent's count is 1. */
    public function sendToClient(string $clientId, string $msg, mixed $data = null, int $code = 0, string $sendUserId = ''): Sent
    {
        $d = $this->call('send_to_client', ['clientId' => $clientId] + self::message($msg, $data, $code, $sendUserId));
        return new Sent($d['messageId'], 1);
    }

    /** @param list<string> $clientIds */
    public function sendToClients(array $clientIds, string $msg, mixed $data = null, int $code = 0, string $sendUserId = ''): SentToClients
    {
        $d = $this->call('send_to_clients', ['clientIds' => array_values($clientIds)] + self::message($msg, $data, $code, $sendUserId));
        return new SentToClients($d['messageId'], $d['missing']);
    }

    /** Sends a frame to a group's members; the Sent's count is how many (0: no such group). */
    public function sendToGroup(string $groupName, string $msg, mixed $data = null, int $code = 0, string $sendUserId = ''): Sent
    {
        $d = $this->call('send_to_group', ['groupName' => $groupName] + self::message($msg, $data, $code, $sendUserId));
        return new Sent($d['messageId'], (int) $d['count']);
    }

    /** Sends a frame to every client of the system. */
    public function sendToSystem(string $msg, mixed $data = null, int $code = 0, string $sendUserId = ''): Sent
    {
        $d = $this->call('send_to_system', self::message($msg, $data, $code, $sendUserId));
        return new Sent($d['messageId'], (int) $d['count']);
    }

    /** Binds a connected client to a group (404 if it is not connected), setting its userId and extend. */
    public function bindToGroup(string $clientId, string $groupName, string $userId = '', string $extend = ''): void
    {
        $body = ['clientId' => $clientId, 'groupName' => $groupName];
        if ($userId !== '') {
            $body['userId'] = $userId;
        }
        if ($extend !== '') {
            $body['extend'] = $extend;
        }
        $this->call('bind_to_group', $body);
    }

    public function unbindFromGroup(string $clientId, string $groupName): void
    {
        $this->call('unbind_from_group', ['clientId' => $clientId, 'groupName' => $groupName]);
    }

    public function getOnlineList(string $groupName): OnlineList
    {
        $d = $this->call('get_online_list', ['groupName' => $groupName]);
        return new OnlineList((int) $d['count'], $d['list'], $d['clients'] ?? []);
    }

    /** @return array<string, list<string>> each group of the system with its members' clientIds */
    public function getAllGroups(): array
    {
        $d = $this->call('get_all_groups', []);
        return is_array($d) ? $d : [];
    }

    /** Closes a client with close code 1000 (404 if it is not connected). */
    public function closeClient(string $clientId): void
    {
        $this->call('close_client', ['clientId' => $clientId]);
    }

    public function getClientInfo(string $clientId): ClientInfo
    {
        $d = $this->call('get_client_info', ['clientId' => $clientId]);
        return new ClientInfo(
            (bool) $d['online'],
            (bool) ($d['connected'] ?? false),
            (string) $d['clientId'],
            (string) ($d['userId'] ?? ''),
            (string) ($d['extend'] ?? ''),
            $d['groups'] ?? [],
            (int) ($d['connectedAt'] ?? 0),
        );
    }

    /** Sends a frame to every connection of a user, on every node; count 0: the user has none. */
    public function sendToUser(string $userId, string $msg, mixed $data = null, int $code = 0, string $sendUserId = ''): Sent
    {
        $d = $this->call('send_to_user', ['userId' => $userId] + self::message($msg, $data, $code, $sendUserId));
        return new Sent($d['messageId'], (int) $d['count']);
    }

    public function getUserInfo(string $userId): UserInfo
    {
        $d = $this->call('get_user_info', ['userId' => $userId]);
        return new UserInfo((bool) $d['online'], (string) $d['userId'], $d['clients'] ?? [], $d['groups'] ?? []);
    }

    /** Closes every connection of a user (1000), on every node; returns how many. */
    public function closeUser(string $userId): int
    {
        return (int) $this->call('close_user', ['userId' => $userId])['count'];
    }

    /**
     * One page of the users online in a group (null: the system), counted once however many
     * nodes their connections are on. $limit 1 to 10,000 (null: 1,000); $cursor from the
     * previous page.
     */
    public function getOnlineUsers(?string $groupName = null, ?string $cursor = null, ?int $limit = null): OnlineUsers
    {
        $body = self::page($cursor, $limit);
        if ($groupName !== null) {
            $body['groupName'] = $groupName;
        }
        $d = $this->call('get_online_users', $body);
        return new OnlineUsers($d['users'], (int) $d['userCount'], (int) $d['clientCount'], $d['cursor'] ?? null);
    }

    /** One page of every client of the system: the re-sync after a webhook batch's 'dropped'. */
    public function listClients(?string $cursor = null, ?int $limit = null): ListedClients
    {
        $d = $this->call('list_clients', self::page($cursor, $limit));
        return new ListedClients($d['clients'], $d['cursor'] ?? null);
    }

    /**
     * Every user online in a group (null: the system), page after page.
     * @return \Generator<int, array{userId: string, clients: int}>
     */
    public function eachOnlineUser(?string $groupName = null, ?int $limit = null): \Generator
    {
        $cursor = null;
        do {
            $page = $this->getOnlineUsers($groupName, $cursor, $limit);
            yield from $page->users;
            $cursor = $page->cursor;
        } while ($cursor !== null);
    }

    /**
     * Every client of the system, page after page: the re-sync after a webhook's 'dropped'.
     * @return \Generator<int, array{clientId: string, userId: string, groups: list<string>, connectedAt: int, connected: bool}>
     */
    public function eachClient(?int $limit = null): \Generator
    {
        $cursor = null;
        do {
            $page = $this->listClients($cursor, $limit);
            yield from $page->clients;
            $cursor = $page->cursor;
        } while ($cursor !== null);
    }

    private static function page(?string $cursor, ?int $limit): array
    {
        return array_filter(['cursor' => $cursor, 'limit' => $limit], fn ($v) => $v !== null);
    }

    private function call(string $method, array $body): mixed
    {
        return $this->client->call($method, $this->systemId, $body);
    }

    private static function message(string $msg, mixed $data, int $code, string $sendUserId): array
    {
        $message = ['msg' => $msg];
        if ($data !== null) {
            $message['data'] = $data;
        }
        if ($code !== 0) {
            $message['code'] = $code;
        }
        if ($sendUserId !== '') {
            $message['sendUserId'] = $sendUserId;
        }
        return $message;
    }
}
