//go:build goravel

package routes

import (
	"context"

	"github.com/goravel/framework/facades"

	"github.com/wshub/wshub-go/examples/goravel/app/http/controllers"
	"github.com/wshub/wshub-go/examples/goravel/chat"
)

// Api registers the chat routes; call it from your app's route service provider.
func Api() {
	c, err := chat.FromEnv(context.Background())
	if err != nil {
		panic("wshub: " + err.Error())
	}
	controller := &controllers.ChatController{Chat: c}
	facades.Route().Post("/chat/join", controller.Join)
	facades.Route().Post("/chat/say", controller.Say)
}
