package wshub_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wshub "github.com/wshub/wshub-go"
	"github.com/wshub/wshub-go/internal/wstest"
)

const frameWait = 5 * time.Second

// live is the server the tests run against: WSHUB_URL and its WSHUB_JWT_SECRET (wshub's own
// test suite starts one and sets both). Without them the live tests skip.
func live(t *testing.T) (baseURL, secret string) {
	t.Helper()
	baseURL, secret = os.Getenv("WSHUB_URL"), os.Getenv("WSHUB_JWT_SECRET")
	if baseURL == "" || secret == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true needs WSHUB_URL and WSHUB_JWT_SECRET: a running wshub and its secret")
		}
		t.Skip("SKIPPED: set WSHUB_URL and WSHUB_JWT_SECRET to run against a live wshub")
	}
	return baseURL, secret
}

func unique(prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, err error) int {
	t.Helper()
	var apiErr *wshub.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("want a *wshub.Error, got %v", err)
	}
	return apiErr.Status
}

func dial(t *testing.T, baseURL, systemID string) *wstest.Conn {
	t.Helper()
	conn, err := wstest.Dial(baseURL, systemID)
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// registered returns a fresh system on the live server and the client that registered it.
func registered(t *testing.T) (*wshub.Client, *wshub.System, string) {
	baseURL, secret := live(t)
	c := wshub.New(baseURL, wshub.WithSecret(secret))
	id := unique("go")
	must(t, c.Register(context.Background(), id))
	return c, c.System(id), baseURL
}

func TestMintedTokensAreAdminOrScoped(t *testing.T) {
	baseURL, secret := live(t)
	ctx := context.Background()

	admin, err := wshub.MintToken(secret, "", time.Minute)
	must(t, err)
	info, err := wshub.New(baseURL, wshub.WithToken(admin)).CheckToken(ctx)
	must(t, err)
	if !info.Admin() {
		t.Fatalf("admin token: %+v", info)
	}

	id := unique("scoped")
	scoped, err := wshub.MintToken(secret, id, time.Minute)
	must(t, err)
	c := wshub.New(baseURL, wshub.WithToken(scoped))
	info, err = c.CheckToken(ctx)
	must(t, err)
	if info.SystemID != id || info.Admin() {
		t.Fatalf("scoped token: %+v", info)
	}
	must(t, c.Register(ctx, id))
	if got := status(t, c.Register(ctx, unique("other"))); got != http.StatusForbidden {
		t.Fatalf("a scoped token registering another system: %d", got)
	}
	if _, err := c.System(id).GetSystem(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := wshub.MintToken(secret, "", 0); err == nil {
		t.Fatal("a token that is expired when minted")
	}
	if _, err := wshub.MintToken("", id, time.Minute); err == nil {
		t.Fatal("a token without a secret")
	}
}

func TestEveryMessageAndGroupMethod(t *testing.T) {
	_, s, baseURL := registered(t)
	ctx := context.Background()
	ann, bob := dial(t, baseURL, s.ID()), dial(t, baseURL, s.ID())

	must(t, s.BindToGroup(ctx, wshub.BindToGroup{ClientID: ann.ClientID, GroupName: "room", UserID: "u-ann", Extend: `{"nick":"Ann"}`}))
	must(t, s.BindToGroup(ctx, wshub.BindToGroup{ClientID: bob.ClientID, GroupName: "room", UserID: "u-bob"}))
	// Ann sees her own 1001 and Bob's; Bob sees his.
	for _, want := range []int{1001, 1001} {
		frame, err := ann.ReadFrame(frameWait)
		must(t, err)
		if frame.Code != want {
			t.Fatalf("ann's notice: %+v", frame)
		}
	}
	if frame, err := bob.ReadFrame(frameWait); err != nil || frame.Code != 1001 {
		t.Fatalf("bob's notice: %+v %v", frame, err)
	}

	list, err := s.GetOnlineList(ctx, "room")
	must(t, err)
	sort.Strings(list.List)
	want := []string{ann.ClientID, bob.ClientID}
	sort.Strings(want)
	if list.Count != 2 || !reflect.DeepEqual(list.List, want) || len(list.Clients) != 2 {
		t.Fatalf("online list: %+v", list)
	}
	for _, member := range list.Clients {
		if member.ClientID == ann.ClientID && (member.UserID != "u-ann" || member.Extend != `{"nick":"Ann"}`) {
			t.Fatalf("ann as a member: %+v", member)
		}
	}
	empty, err := s.GetOnlineList(ctx, "nobody-here")
	must(t, err)
	if empty.Count != 0 || len(empty.List) != 0 {
		t.Fatalf("an empty group: %+v", empty)
	}

	groups, err := s.GetAllGroups(ctx)
	must(t, err)
	if len(groups) != 1 || len(groups["room"]) != 2 {
		t.Fatalf("all groups: %v", groups)
	}

	info, err := s.GetClientInfo(ctx, ann.ClientID)
	must(t, err)
	if !info.Online || !info.Connected || info.UserID != "u-ann" || !reflect.DeepEqual(info.Groups, []string{"room"}) || info.ConnectedAt == 0 {
		t.Fatalf("ann's info: %+v", info)
	}

	// Ann's user is her one connection; a user with none is reached by no one.
	toUser, err := s.SendToUser(ctx, wshub.SendToUser{UserID: "u-ann", Msg: "for ann", Data: []string{"x"}})
	must(t, err)
	if frame, err := ann.ReadFrame(frameWait); err != nil || toUser.Count != 1 || frame.MessageID != toUser.MessageID || string(frame.Data) != `["x"]` {
		t.Fatalf("send_to_user: %+v gave %+v %v", toUser, frame, err)
	}
	if none, err := s.SendToUser(ctx, wshub.SendToUser{UserID: "nobody", Msg: "x"}); err != nil || none.Count != 0 {
		t.Fatalf("send_to_user to nobody: %+v %v", none, err)
	}
	user, err := s.GetUserInfo(ctx, "u-ann")
	must(t, err)
	if !user.Online || user.UserID != "u-ann" || len(user.Clients) != 1 || user.Clients[0].ClientID != ann.ClientID ||
		!user.Clients[0].Connected || !reflect.DeepEqual(user.Groups, []string{"room"}) {
		t.Fatalf("get_user_info: %+v", user)
	}

	// Pages: two users in the room, one per page, then every client.
	first, err := s.GetOnlineUsers(ctx, "room", wshub.Page{Limit: 1})
	must(t, err)
	second, err := s.GetOnlineUsers(ctx, "room", wshub.Page{Limit: 1, Cursor: first.Cursor})
	must(t, err)
	if len(first.Users) != 1 || first.Users[0].UserID != "u-ann" || first.UserCount != 2 || first.ClientCount != 2 ||
		first.Cursor == "" || len(second.Users) != 1 || second.Users[0].UserID != "u-bob" || second.Cursor != "" {
		t.Fatalf("get_online_users: %+v then %+v", first, second)
	}
	everyone, err := s.ListClients(ctx, wshub.Page{})
	must(t, err)
	if len(everyone.Clients) != 2 || everyone.Cursor != "" {
		t.Fatalf("list_clients: %+v", everyone)
	}
	var seenUsers []string
	must(t, s.EachOnlineUser(ctx, "room", wshub.Page{Limit: 1}, func(u wshub.OnlineUser) error { seenUsers = append(seenUsers, u.UserID); return nil }))
	seenClients := 0
	must(t, s.EachClient(ctx, wshub.Page{Limit: 1}, func(wshub.ListedClient) error { seenClients++; return nil }))
	if !reflect.DeepEqual(seenUsers, []string{"u-ann", "u-bob"}) || seenClients != 2 {
		t.Fatalf("EachOnlineUser / EachClient: %v, %d", seenUsers, seenClients)
	}
	_, err = s.ListClients(ctx, wshub.Page{Cursor: first.Cursor})
	if got := status(t, err); got != http.StatusBadRequest {
		t.Fatalf("another query's cursor: %d", got)
	}

	// Data goes as the JSON value given: an object stays an object.
	sent, err := s.SendToClient(ctx, wshub.SendToClient{ClientID: ann.ClientID, Msg: "hi", Code: 7, SendUserID: "u-bob", Data: map[string]int{"n": 1}})
	must(t, err)
	frame, err := ann.ReadFrame(frameWait)
	must(t, err)
	if frame.MessageID != sent.MessageID || sent.Count != 1 || frame.Msg != "hi" || frame.Code != 7 || frame.SendUserID != "u-bob" || string(frame.Data) != `{"n":1}` {
		t.Fatalf("send_to_client: %+v gave %+v", sent, frame)
	}

	many, err := s.SendToClients(ctx, wshub.SendToClients{ClientIDs: []string{ann.ClientID, "not-connected"}, Msg: "some", Data: "text"})
	must(t, err)
	if !reflect.DeepEqual(many.Missing, []string{"not-connected"}) || many.MessageID == "" {
		t.Fatalf("send_to_clients: %+v", many)
	}
	if frame, err := ann.ReadFrame(frameWait); err != nil || frame.MessageID != many.MessageID || string(frame.Data) != `"text"` {
		t.Fatalf("send_to_clients' frame: %+v %v", frame, err)
	}

	toGroup, err := s.SendToGroup(ctx, wshub.SendToGroup{GroupName: "room", Msg: "group", Data: json.RawMessage(`[1,2]`)})
	must(t, err)
	if toGroup.Count != 2 {
		t.Fatalf("send_to_group: %+v", toGroup)
	}
	for _, conn := range []*wstest.Conn{ann, bob} {
		if frame, err := conn.ReadFrame(frameWait); err != nil || frame.MessageID != toGroup.MessageID || string(frame.Data) != `[1,2]` {
			t.Fatalf("send_to_group's frame: %+v %v", frame, err)
		}
	}

	toSystem, err := s.SendToSystem(ctx, wshub.Message{Msg: "everyone"})
	must(t, err)
	if toSystem.Count != 2 {
		t.Fatalf("send_to_system: %+v", toSystem)
	}
	for _, conn := range []*wstest.Conn{ann, bob} {
		if frame, err := conn.ReadFrame(frameWait); err != nil || frame.MessageID != toSystem.MessageID || frame.Msg != "everyone" {
			t.Fatalf("send_to_system's frame: %+v %v", frame, err)
		}
	}

	must(t, s.UnbindFromGroup(ctx, wshub.UnbindFromGroup{ClientID: bob.ClientID, GroupName: "room"}))
	if frame, err := ann.ReadFrame(frameWait); err != nil || frame.Code != 1002 {
		t.Fatalf("the 1002 for bob: %+v %v", frame, err)
	}
	if list, err := s.GetOnlineList(ctx, "room"); err != nil || list.Count != 1 {
		t.Fatalf("after the unbind: %+v %v", list, err)
	}

	must(t, s.CloseClient(ctx, bob.ClientID))
	var closed *wstest.ClosedError
	if _, err := bob.ReadFrame(frameWait); !errors.As(err, &closed) || closed.Code != 1000 {
		t.Fatalf("close_client: %v", err)
	}
	if closed, err := s.CloseUser(ctx, "u-ann"); err != nil || closed != 1 {
		t.Fatalf("close_user: %d %v", closed, err)
	}
	if _, err := ann.ReadFrame(frameWait); !errors.As(err, &closed) || closed.Code != 1000 {
		t.Fatalf("close_user closes with 1000: %v", err)
	}
	if user, err := s.GetUserInfo(ctx, "u-ann"); err != nil || user.Online || len(user.Clients) != 0 {
		t.Fatalf("a closed user: %+v %v", user, err)
	}
	gone, err := s.GetClientInfo(ctx, bob.ClientID)
	must(t, err)
	if gone.Online || gone.ClientID != bob.ClientID {
		t.Fatalf("a closed client's info: %+v", gone)
	}
}

func TestSystemSettingsAndUnregister(t *testing.T) {
	c, s, baseURL := registered(t)
	ctx := context.Background()
	conn := dial(t, baseURL, s.ID())

	hook := wshub.Webhook{URL: "http://127.0.0.1:9/hook", Secret: "sixteen-chars-or-more", Events: []string{"client_online"}}
	must(t, s.UpdateSystem(ctx, wshub.UpdateSystem{Webhook: &hook, MQTT: &wshub.MQTT{Events: []string{"group_joined"}}}))
	info, err := s.GetSystem(ctx)
	must(t, err)
	if info.SystemID != s.ID() || info.Clients != 1 || info.RegisteredAt == 0 ||
		info.Webhook == nil || info.Webhook.URL != hook.URL || info.Webhook.Secret != "" ||
		!reflect.DeepEqual(info.Webhook.Events, hook.Events) ||
		info.MQTT == nil || !reflect.DeepEqual(info.MQTT.Events, []string{"group_joined"}) {
		t.Fatalf("get_system: %+v %+v %+v", info, info.Webhook, info.MQTT)
	}

	must(t, s.UpdateSystem(ctx, wshub.UpdateSystem{RemoveWebhook: true}))
	info, err = s.GetSystem(ctx)
	must(t, err)
	if info.Webhook != nil || info.MQTT == nil {
		t.Fatalf("the webhook removed, MQTT kept: %+v", info)
	}
	if got := status(t, s.UpdateSystem(ctx, wshub.UpdateSystem{})); got != http.StatusBadRequest {
		t.Fatalf("an update that changes nothing: %d", got)
	}
	if info.Presence != wshub.PresenceClient {
		t.Fatalf("presence by default: %q", info.Presence)
	}
	must(t, s.UpdateSystem(ctx, wshub.UpdateSystem{Presence: wshub.PresenceUser}))
	if info, err := s.GetSystem(ctx); err != nil || info.Presence != wshub.PresenceUser || info.MQTT == nil {
		t.Fatalf("presence set, MQTT kept: %+v %v", info, err)
	}

	// Settings given to register are kept.
	other := unique("go-settings")
	must(t, c.Register(ctx, other, wshub.Settings{MQTT: &wshub.MQTT{Events: []string{"client_online"}}, Presence: wshub.PresenceUser}))
	if info, err := c.System(other).GetSystem(ctx); err != nil || info.MQTT == nil || info.Webhook != nil || info.Presence != wshub.PresenceUser {
		t.Fatalf("register with settings: %+v %v", info, err)
	}

	must(t, s.Unregister(ctx))
	var closed *wstest.ClosedError
	if _, err := conn.ReadFrame(frameWait); !errors.As(err, &closed) || closed.Code != 4001 {
		t.Fatalf("unregister closes the clients with 4001: %v", err)
	}
	_, err = s.GetSystem(ctx)
	if got := status(t, err); got != http.StatusForbidden {
		t.Fatalf("a removed system: %d", got)
	}
}

func TestErrorsCarryStatusCodeAndMessage(t *testing.T) {
	c, s, baseURL := registered(t)
	ctx := context.Background()

	_, err := wshub.New(baseURL, wshub.WithToken("not-a-token")).CheckToken(ctx)
	var apiErr *wshub.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Code == 0 || apiErr.Msg == "" || apiErr.Method != "check_token" {
		t.Fatalf("401: %#v", err)
	}
	wrongSecret := wshub.New(baseURL, wshub.WithSecret("another secret altogether"))
	if got := status(t, wrongSecret.System(s.ID()).CloseClient(ctx, "x")); got != http.StatusUnauthorized {
		t.Fatalf("a token from the wrong secret: %d", got)
	}

	_, err = s.SendToClient(ctx, wshub.SendToClient{ClientID: "not-connected", Msg: "hi"})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || !strings.Contains(apiErr.Msg, "not-connected") {
		t.Fatalf("404: %#v", err)
	}
	if !wshub.IsStatus(err, http.StatusNotFound) {
		t.Fatal("IsStatus")
	}

	big := strings.Repeat("x", 2<<20)
	_, err = s.SendToSystem(ctx, wshub.Message{Msg: "big", Data: big})
	if got := status(t, err); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("413: %v", err)
	}

	if got := status(t, c.Register(ctx, s.ID())); got != http.StatusConflict {
		t.Fatalf("409: %d", got)
	}
	_, err = s.SendToGroup(ctx, wshub.SendToGroup{Msg: "no group"})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(apiErr.Msg, "groupName") {
		t.Fatalf("400 naming the field: %#v", err)
	}
	_, err = c.System(unique("never-registered")).GetAllGroups(ctx)
	if got := status(t, err); got != http.StatusForbidden {
		t.Fatalf("403: %d", got)
	}
}

// A stand-in for a proxy in front of wshub that answers 503 a given number of times.
func flaky(t *testing.T, failures int32, calls *int32) *httptest.Server {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if atomic.AddInt32(calls, 1) <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":-1,"msg":"overloaded","data":[]}`))
			return
		}
		_, _ = w.Write([]byte(`{"code":0,"msg":"success","data":{"count":0,"list":[],"clients":[]}}`))
	}))
	t.Cleanup(server.Close)
	return server
}

func TestReadsAreRetriedAndWritesAreNot(t *testing.T) {
	ctx := context.Background()
	var calls int32
	s := wshub.New(flaky(t, 2, &calls).URL).System("demo")
	if _, err := s.GetOnlineList(ctx, "g"); err != nil || calls != 3 {
		t.Fatalf("a read after two 503s: %v after %d calls", err, calls)
	}

	calls = 0
	if got := status(t, s.BindToGroup(ctx, wshub.BindToGroup{ClientID: "c", GroupName: "g"})); got != http.StatusServiceUnavailable || calls != 1 {
		t.Fatalf("a write is tried once: %d after %d calls", got, calls)
	}

	calls = 0
	noRetries := wshub.New(flaky(t, 1, &calls).URL, wshub.WithRetries(0)).System("demo")
	if _, err := noRetries.GetOnlineList(ctx, "g"); !wshub.IsStatus(err, http.StatusServiceUnavailable) || calls != 1 {
		t.Fatalf("WithRetries(0): %v after %d calls", err, calls)
	}

	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
	}))
	defer hanging.Close()
	started := time.Now()
	_, err := wshub.New(hanging.URL, wshub.WithTimeout(200*time.Millisecond), wshub.WithRetries(0)).CheckToken(ctx)
	if err == nil || time.Since(started) > time.Second {
		t.Fatalf("WithTimeout: %v after %v", err, time.Since(started))
	}
}
