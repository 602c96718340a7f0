<?php

declare(strict_types=1);

namespace Wshub;

/** The server could not be reached or its reply not read (curl's error, or a timeout). */
final class TransportException extends \RuntimeException
{
}
