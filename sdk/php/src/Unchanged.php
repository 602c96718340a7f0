<?php

declare(strict_types=1);

namespace Wshub;

/** The default of System::updateSystem's parameters: leave that setting as it is. */
enum Unchanged
{
    case Keep;
}
