//go:build goravel

// The goravel side of the example: copy this file and routes/api.go into a goravel app (and
// chat/ beside them), then `go get github.com/wshub/wshub-go`. It is built only with the
// `goravel` tag, since the SDK's own module does not depend on goravel.
package controllers

import (
	"errors"

	"github.com/goravel/framework/contracts/http"

	"github.com/wshub/wshub-go/examples/goravel/chat"
)

type ChatController struct {
	Chat *chat.Chat
}

// Join: POST /chat/join {clientId, room}, from the page right after its WebSocket's welcome
// frame. The user comes from your auth; a query field stands in for it here.
func (r *ChatController) Join(ctx http.Context) http.Response {
	userID := ctx.Request().Input("userId") // in an app: facades.Auth(ctx).ID()
	err := r.Chat.Join(ctx, ctx.Request().Input("clientId"), userID, ctx.Request().Input("nick"), ctx.Request().Input("room"))
	if errors.Is(err, chat.ErrNotConnected) {
		return ctx.Response().Json(http.StatusConflict, http.Json{"error": err.Error()})
	}
	if err != nil {
		return ctx.Response().Json(http.StatusBadGateway, http.Json{"error": "push server unavailable"})
	}
	return ctx.Response().Json(http.StatusOK, http.Json{"joined": ctx.Request().Input("room")})
}

// Say: POST /chat/say {room, text}.
func (r *ChatController) Say(ctx http.Context) http.Response {
	count, err := r.Chat.Say(ctx, ctx.Request().Input("room"), ctx.Request().Input("userId"), ctx.Request().Input("text"))
	if err != nil {
		return ctx.Response().Json(http.StatusBadGateway, http.Json{"error": "push server unavailable"})
	}
	return ctx.Response().Json(http.StatusOK, http.Json{"delivered": count})
}
