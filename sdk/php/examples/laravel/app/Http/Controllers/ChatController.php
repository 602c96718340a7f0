<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Wshub\ApiException;
use Wshub\System;

/**
 * The browser connects to ws://<wshub>/ws?systemId=chat, posts the clientId of its welcome
 * frame to /chat/join, and receives every line posted to /chat/say as a frame whose data is
 * {"from": <userId>, "text": ..}.
 */
class ChatController
{
    public function __construct(private readonly System $wshub)
    {
    }

    /** POST /chat/join {clientId, room}: binds the signed-in user's connection to the room. */
    public function join(Request $request): array
    {
        $user = $request->user();
        try {
            $this->wshub->bindToGroup(
                (string) $request->input('clientId'),
                (string) $request->input('room'),
                userId: (string) $user->id,
                extend: (string) $user->name,
            );
        } catch (ApiException $e) {
            if ($e->getStatus() === 404) {
                // The page's connection is gone (a reload, a network change): it reconnects.
                return ['joined' => false, 'reconnect' => true];
            }
            throw $e;
        }
        return ['joined' => true];
    }

    /** POST /chat/say {room, text}: pushes a line to everyone in the room. */
    public function say(Request $request): array
    {
        $userId = (string) $request->user()->id;
        $sent = $this->wshub->sendToGroup(
            (string) $request->input('room'),
            'chat',
            ['from' => $userId, 'text' => (string) $request->input('text')],
            sendUserId: $userId,
        );
        return ['delivered' => $sent->count];
    }
}
