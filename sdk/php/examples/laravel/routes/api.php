<?php

use App\Http\Controllers\ChatController;
use App\Http\Controllers\WshubWebhookController;
use Illuminate\Support\Facades\Route;

Route::middleware('auth:sanctum')->group(function () {
    Route::post('/chat/join', [ChatController::class, 'join']);
    Route::post('/chat/say', [ChatController::class, 'say']);
});
Route::post('/wshub/webhook', WshubWebhookController::class);
