<?php

declare(strict_types=1);

namespace Wshub;

/** A send's reply: the frame's messageId and how many clients it went to. */
final class Sent
{
    public function __construct(public readonly string $messageId, public readonly int $count)
    {
    }
}
