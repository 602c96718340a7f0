<?php

declare(strict_types=1);

namespace Wshub;

/** Verifies wshub's webhook batches: the signature, the timestamp, and the body's shape. */
final class Webhook
{
    public const TIMESTAMP_HEADER = 'X-Wshub-Timestamp';
    public const SIGNATURE_HEADER = 'X-Wshub-Signature';
    public const DEFAULT_TOLERANCE = 300;

    /**
     * Checks the batch's signature (HMAC-SHA256 of "<timestamp>.<body>" with the system's webhook
     * secret) and that its timestamp is within $tolerance seconds of now, and returns the batch:
     * ['systemId' => .., 'events' => [[id, name, timeMs, ...], ...], 'dropped' => n (0 if absent)].
     * Deduplicate events by 'id': delivery is at least once.
     *
     * @param array<string, string|list<string>> $headers any case, values or lists of values
     *        (Laravel: $request->headers->all(); plain PHP: getallheaders())
     * @throws WebhookException
     */
    public static function verify(string $secret, array $headers, string $body, int $tolerance = self::DEFAULT_TOLERANCE): array
    {
        $timestamp = self::header($headers, self::TIMESTAMP_HEADER);
        if ($timestamp === null || !ctype_digit($timestamp) || abs(time() - (int) $timestamp) > $tolerance) {
            throw new WebhookException(WebhookException::STALE, 'timestamp missing or outside the tolerance');
        }
        $signature = self::header($headers, self::SIGNATURE_HEADER) ?? '';
        $expected = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
        if (!hash_equals($expected, $signature)) {
            throw new WebhookException(WebhookException::BAD_SIGNATURE, 'signature missing or wrong');
        }
        try {
            $batch = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new WebhookException(WebhookException::MALFORMED, 'the body is not JSON: ' . $e->getMessage());
        }
        if (!is_array($batch) || !is_string($batch['systemId'] ?? null) || !is_array($batch['events'] ?? null)) {
            throw new WebhookException(WebhookException::MALFORMED, 'the body is not a batch');
        }
        $batch['dropped'] = (int) ($batch['dropped'] ?? 0);
        return $batch;
    }

    /**
     * verify() on the request PHP is serving (php://input and the HTTP_ server variables).
     * @throws WebhookException
     */
    public static function verifyRequest(string $secret, int $tolerance = self::DEFAULT_TOLERANCE): array
    {
        $headers = [];
        foreach ($_SERVER as $name => $value) {
            if (is_string($name) && str_starts_with($name, 'HTTP_')) {
                $headers[str_replace('_', '-', substr($name, 5))] = (string) $value;
            }
        }
        return self::verify($secret, $headers, (string) file_get_contents('php://input'), $tolerance);
    }

    private static function header(array $headers, string $name): ?string
    {
        foreach ($headers as $key => $value) {
            if (is_string($key) && strcasecmp($key, $name) === 0) {
                $value = is_array($value) ? reset($value) : $value;
                return is_string($value) ? $value : null;
            }
        }
        return null;
    }
}
