<?php

declare(strict_types=1);

// The two pieces of Laravel the example's ChatController touches, so the tests can run the
// controller itself against a live wshub without installing Laravel: a request with input()
// and user(). Everything the controller does with wshub is the real SDK.
namespace Illuminate\Http;

if (!class_exists(Request::class)) {
    class Request
    {
        public function __construct(private array $input, private ?object $user)
        {
        }

        public function input(string $key, mixed $default = null): mixed
        {
            return $this->input[$key] ?? $default;
        }

        public function user(): ?object
        {
            return $this->user;
        }
    }
}
