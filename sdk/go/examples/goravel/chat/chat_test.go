package chat_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/wshub/wshub-go/examples/goravel/chat"
	"github.com/wshub/wshub-go/internal/wstest"
)

// The example as a goravel app runs it, against the live wshub of the SDK's tests.
func TestTheGoravelExampleJoinsAndSays(t *testing.T) {
	baseURL := os.Getenv("WSHUB_URL")
	if baseURL == "" || os.Getenv("WSHUB_JWT_SECRET") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true needs WSHUB_URL and WSHUB_JWT_SECRET")
		}
		t.Skip("SKIPPED: set WSHUB_URL and WSHUB_JWT_SECRET to run against a live wshub")
	}
	t.Setenv("WSHUB_SYSTEM_ID", "goravel-example-"+time.Now().Format("150405.000000"))
	ctx := context.Background()
	c, err := chat.FromEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chat.FromEnv(ctx); err != nil {
		t.Fatalf("a second start finds the system registered: %v", err)
	}

	browser, err := wstest.Dial(baseURL, c.System.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer browser.Close()
	if err := c.Join(ctx, browser.ClientID, "u-ann", "Ann", "lobby"); err != nil {
		t.Fatal(err)
	}
	if frame, err := browser.ReadFrame(5 * time.Second); err != nil || frame.Code != 1001 {
		t.Fatalf("the join notice: %+v %v", frame, err)
	}
	count, err := c.Say(ctx, "lobby", "u-ann", "hello")
	if err != nil || count != 1 {
		t.Fatalf("say: %d %v", count, err)
	}
	frame, err := browser.ReadFrame(5 * time.Second)
	if err != nil || frame.Msg != "chat" || frame.SendUserID != "u-ann" || string(frame.Data) != `{"from":"u-ann","text":"hello"}` {
		t.Fatalf("the line: %+v %v", frame, err)
	}
	if err := c.Join(ctx, "gone-client", "u-bob", "Bob", "lobby"); !errors.Is(err, chat.ErrNotConnected) {
		t.Fatalf("a stale clientId: %v", err)
	}
}
