// Package wshub is the Go SDK for wshub's REST API: one method per REST method, typed requests
// and replies, API tokens minted from the server's secret, and webhook verification.
//
//	c := wshub.New("http://127.0.0.1:7800", wshub.WithSecret(os.Getenv("WSHUB_JWT_SECRET")))
//	if err := c.Register(ctx, "demo"); err != nil && !wshub.IsStatus(err, http.StatusConflict) {
//		return err
//	}
//	s := c.System("demo")
//	sent, err := s.SendToGroup(ctx, wshub.SendToGroup{GroupName: "room-1", Msg: "hi", Data: v})
//
// Errors the server answers are *Error values (use errors.As); the rest are transport errors.
// Only the standard library is used; Go 1.19 or later.
package wshub
