// Package chat is the wshub side of a chat room, kept free of the web framework so the
// goravel controllers beside it stay three lines each (and so it runs in the SDK's tests).
package chat

import (
	"context"
	"errors"
	"net/http"
	"os"

	wshub "github.com/wshub/wshub-go"
)

// Chat pushes a chat's messages through one wshub system.
type Chat struct {
	System *wshub.System
}

// FromEnv connects to the wshub at WSHUB_URL with tokens minted from WSHUB_JWT_SECRET and
// registers WSHUB_SYSTEM_ID (default "chat") if it is not registered yet.
func FromEnv(ctx context.Context) (*Chat, error) {
	systemID := os.Getenv("WSHUB_SYSTEM_ID")
	if systemID == "" {
		systemID = "chat"
	}
	client := wshub.New(os.Getenv("WSHUB_URL"), wshub.WithSecret(os.Getenv("WSHUB_JWT_SECRET")))
	if err := client.Register(ctx, systemID); err != nil && !wshub.IsStatus(err, http.StatusConflict) {
		return nil, err
	}
	return &Chat{System: client.System(systemID)}, nil
}

// ErrNotConnected is what Join answers for a clientId wshub does not know (a stale page).
var ErrNotConnected = errors.New("that connection is gone: reconnect and try again")

// Join binds a browser's connection (the clientId its welcome frame carried) to a room as the
// signed-in user; the room's members get wshub's 1001 notice.
func (c *Chat) Join(ctx context.Context, clientID, userID, nick, room string) error {
	err := c.System.BindToGroup(ctx, wshub.BindToGroup{
		ClientID:  clientID,
		GroupName: room,
		UserID:    userID,
		Extend:    nick,
	})
	if wshub.IsStatus(err, http.StatusNotFound) {
		return ErrNotConnected
	}
	return err
}

// Line is one chat message as the browsers receive it in the frame's data.
type Line struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// Say sends a line to everyone in the room and returns how many connections it reached.
func (c *Chat) Say(ctx context.Context, room, userID, text string) (int, error) {
	sent, err := c.System.SendToGroup(ctx, wshub.SendToGroup{
		GroupName:  room,
		Msg:        "chat",
		SendUserID: userID,
		Data:       Line{From: userID, Text: text},
	})
	return sent.Count, err
}
