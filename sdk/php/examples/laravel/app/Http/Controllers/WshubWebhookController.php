<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Wshub\Webhook;
use Wshub\WebhookException;

/** POST /wshub/webhook: wshub's events (a client came or went, joined a room, ...). */
class WshubWebhookController
{
    public function __invoke(Request $request): array
    {
        try {
            $batch = Webhook::verify(config('services.wshub.webhook_secret'), $request->header(), $request->getContent());
        } catch (WebhookException $e) {
            abort(401, $e->getMessage());
        }
        foreach ($batch['events'] as $event) {
            // Delivery is at least once: skip an id you have seen (a unique index, a cache key).
            logger()->info('wshub event', ['id' => $event['id'], 'name' => $event['name']]);
        }
        if ($batch['dropped'] > 0) {
            // Events were lost (a long outage of this endpoint): re-read the state from wshub.
            logger()->warning('wshub dropped events', ['dropped' => $batch['dropped']]);
        }
        return ['ok' => true]; // any 2xx acknowledges the batch; an exception makes wshub retry
    }
}
