package wshub

import "context"

// TokenInfo is check_token's reply: the system the token is scoped to, "" for an admin token.
type TokenInfo struct {
	SystemID string `json:"systemId"`
}

// Admin reports whether the token acts for every system.
func (t TokenInfo) Admin() bool { return t.SystemID == "" }

// CheckToken tells which systems the client's token acts for (401 for a bad token).
func (c *Client) CheckToken(ctx context.Context) (TokenInfo, error) {
	var info struct {
		SystemID *string `json:"systemId"`
	}
	err := c.call(ctx, "check_token", "", struct{}{}, &info, read)
	if err != nil || info.SystemID == nil {
		return TokenInfo{}, err
	}
	return TokenInfo{SystemID: *info.SystemID}, nil
}

// Webhook is a system's webhook: where events are posted, the secret that signs them, and
// which events (none listed: all of them).
type Webhook struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret,omitempty"`
	Events []string `json:"events,omitempty"`
}

// MQTT is which events a system's MQTT bridge publishes.
type MQTT struct {
	Events []string `json:"events"`
}

// Presence is whom a group's 1001/1002 notices are about: each connection (the default) or
// each user (its first connection in the group, and its last one after the presence grace).
type Presence string

const (
	PresenceClient Presence = "client"
	PresenceUser   Presence = "user"
)

// Settings are a system's settings as register takes them; a zero field is not set.
type Settings struct {
	Webhook  *Webhook
	MQTT     *MQTT
	Presence Presence
}

// Register registers a system (409 if it exists), with its settings if given. A token scoped
// to a system may register that system only.
func (c *Client) Register(ctx context.Context, systemID string, settings ...Settings) error {
	body := map[string]any{"systemId": systemID}
	for _, s := range settings {
		if s.Webhook != nil {
			body["webhook"] = s.Webhook
		}
		if s.MQTT != nil {
			body["mqtt"] = s.MQTT
		}
		if s.Presence != "" {
			body["presence"] = s.Presence
		}
	}
	return c.call(ctx, "register", "", body, nil, write)
}

// System is the client's view of one system: every method that takes the SystemId header.
type System struct {
	client *Client
	id     string
}

// System returns the methods of one system. It makes no call.
func (c *Client) System(systemID string) *System { return &System{client: c, id: systemID} }

// ID is the system's id.
func (s *System) ID() string { return s.id }

func (s *System) call(ctx context.Context, method string, body, out any, k kind) error {
	return s.client.call(ctx, method, s.id, body, out, k)
}

// UpdateSystem changes a system's settings. A nil (or empty) field leaves that setting as it
// is; RemoveWebhook / RemoveMQTT remove it. At least one change is needed (else 400).
type UpdateSystem struct {
	Webhook       *Webhook
	RemoveWebhook bool
	MQTT          *MQTT
	RemoveMQTT    bool
	Presence      Presence
}

// UpdateSystem replaces or removes the system's webhook and MQTT settings, and sets its
// presence.
func (s *System) UpdateSystem(ctx context.Context, u UpdateSystem) error {
	body := map[string]any{}
	switch {
	case u.RemoveWebhook:
		body["webhook"] = nil
	case u.Webhook != nil:
		body["webhook"] = u.Webhook
	}
	switch {
	case u.RemoveMQTT:
		body["mqtt"] = nil
	case u.MQTT != nil:
		body["mqtt"] = u.MQTT
	}
	if u.Presence != "" {
		body["presence"] = u.Presence
	}
	return s.call(ctx, "update_system", body, nil, write)
}

// SystemInfo is get_system's reply. The webhook's secret is never shown.
type SystemInfo struct {
	SystemID     string   `json:"systemId"`
	RegisteredAt int64    `json:"registeredAt"` // Unix milliseconds
	Clients      int      `json:"clients"`
	Webhook      *Webhook `json:"webhook"`
	MQTT         *MQTT    `json:"mqtt"`
	Presence     Presence `json:"presence"`
}

// GetSystem returns the system's settings and client count.
func (s *System) GetSystem(ctx context.Context) (SystemInfo, error) {
	var info SystemInfo
	err := s.call(ctx, "get_system", struct{}{}, &info, read)
	return info, err
}

// Unregister removes the system: its clients are closed with 4001, its groups and settings go.
func (s *System) Unregister(ctx context.Context) error {
	return s.call(ctx, "unregister", struct{}{}, nil, write)
}

// Message is what every send carries: the frame's msg (required), and optionally its data
// (any value encoding/json marshals; a json.RawMessage goes as it is), code and sendUserId.
type Message struct {
	Msg        string `json:"msg"`
	Data       any    `json:"data,omitempty"`
	Code       int    `json:"code,omitempty"`
	SendUserID string `json:"sendUserId,omitempty"`
}

// Sent is a send's reply: the frame's messageId and how many clients it went to.
type Sent struct {
	MessageID string `json:"messageId"`
	Count     int    `json:"count"`
}

// SendToClient sends to one connected client (404 if it is not).
type SendToClient struct {
	ClientID   string `json:"clientId"`
	Msg        string `json:"msg"`
	Data       any    `json:"data,omitempty"`
	Code       int    `json:"code,omitempty"`
	SendUserID string `json:"sendUserId,omitempty"`
}

// SendToClient sends a frame to one client. Sent.Count is 1.
func (s *System) SendToClient(ctx context.Context, m SendToClient) (Sent, error) {
	var sent Sent
	err := s.call(ctx, "send_to_client", m, &sent, write)
	if err == nil {
		sent.Count = 1
	}
	return sent, err
}

// SendToClients sends one frame to a list of clients.
type SendToClients struct {
	ClientIDs  []string `json:"clientIds"`
	Msg        string   `json:"msg"`
	Data       any      `json:"data,omitempty"`
	Code       int      `json:"code,omitempty"`
	SendUserID string   `json:"sendUserId,omitempty"`
}

// SentToClients is send_to_clients' reply: one messageId for all, and the ids not connected.
type SentToClients struct {
	MessageID string   `json:"messageId"`
	Missing   []string `json:"missing"`
}

// SendToClients sends a frame to each listed client that is connected.
func (s *System) SendToClients(ctx context.Context, m SendToClients) (SentToClients, error) {
	if m.ClientIDs == nil {
		m.ClientIDs = []string{} // the server wants a list, even an empty one
	}
	var sent SentToClients
	err := s.call(ctx, "send_to_clients", m, &sent, write)
	return sent, err
}

// SendToGroup sends one frame to every member of a group.
type SendToGroup struct {
	GroupName  string `json:"groupName"`
	Msg        string `json:"msg"`
	Data       any    `json:"data,omitempty"`
	Code       int    `json:"code,omitempty"`
	SendUserID string `json:"sendUserId,omitempty"`
}

// SendToGroup sends a frame to a group's members; Sent.Count is how many (0 for no group).
func (s *System) SendToGroup(ctx context.Context, m SendToGroup) (Sent, error) {
	var sent Sent
	err := s.call(ctx, "send_to_group", m, &sent, write)
	return sent, err
}

// SendToSystem sends a frame to every client of the system.
func (s *System) SendToSystem(ctx context.Context, m Message) (Sent, error) {
	var sent Sent
	err := s.call(ctx, "send_to_system", m, &sent, write)
	return sent, err
}

// BindToGroup binds a connected client to a group (404 if it is not connected), setting its
// userId and extend (the last bind wins).
type BindToGroup struct {
	ClientID  string `json:"clientId"`
	GroupName string `json:"groupName"`
	UserID    string `json:"userId,omitempty"`
	Extend    string `json:"extend,omitempty"`
}

// BindToGroup binds a client to a group; binding it again changes nothing.
func (s *System) BindToGroup(ctx context.Context, b BindToGroup) error {
	return s.call(ctx, "bind_to_group", b, nil, write)
}

// UnbindFromGroup takes a client out of a group.
type UnbindFromGroup struct {
	ClientID  string `json:"clientId"`
	GroupName string `json:"groupName"`
}

// UnbindFromGroup unbinds a client from a group (a group it is not in: nothing changes).
func (s *System) UnbindFromGroup(ctx context.Context, u UnbindFromGroup) error {
	return s.call(ctx, "unbind_from_group", u, nil, write)
}

// Member is one client of a group with what its binds set.
type Member struct {
	ClientID string `json:"clientId"`
	UserID   string `json:"userId"`
	Extend   string `json:"extend"`
}

// OnlineList is get_online_list's reply.
type OnlineList struct {
	Count   int      `json:"count"`
	List    []string `json:"list"`    // the members' clientIds
	Clients []Member `json:"clients"` // the same members with userId and extend
}

// GetOnlineList lists a group's members (an empty group: Count 0).
func (s *System) GetOnlineList(ctx context.Context, groupName string) (OnlineList, error) {
	var list OnlineList
	err := s.call(ctx, "get_online_list", map[string]string{"groupName": groupName}, &list, read)
	return list, err
}

// GetAllGroups maps each of the system's groups to its members' clientIds.
func (s *System) GetAllGroups(ctx context.Context) (map[string][]string, error) {
	groups := map[string][]string{}
	err := s.call(ctx, "get_all_groups", struct{}{}, &groups, read)
	return groups, err
}

// CloseClient closes a client's connection with close code 1000 (404 if it is not connected).
func (s *System) CloseClient(ctx context.Context, clientID string) error {
	return s.call(ctx, "close_client", map[string]string{"clientId": clientID}, nil, write)
}

// ClientInfo is get_client_info's reply. Online is false for a client that is gone (the other
// fields then empty); Connected is false while a recovery client is away.
type ClientInfo struct {
	Online      bool     `json:"online"`
	Connected   bool     `json:"connected"`
	ClientID    string   `json:"clientId"`
	UserID      string   `json:"userId"`
	Extend      string   `json:"extend"`
	Groups      []string `json:"groups"`
	ConnectedAt int64    `json:"connectedAt"` // Unix milliseconds
}

// GetClientInfo returns one client's state.
func (s *System) GetClientInfo(ctx context.Context, clientID string) (ClientInfo, error) {
	var info ClientInfo
	err := s.call(ctx, "get_client_info", map[string]string{"clientId": clientID}, &info, read)
	return info, err
}

// SendToUser sends one frame to every connection of a user (its tabs and devices).
type SendToUser struct {
	UserID     string `json:"userId"`
	Msg        string `json:"msg"`
	Data       any    `json:"data,omitempty"`
	Code       int    `json:"code,omitempty"`
	SendUserID string `json:"sendUserId,omitempty"`
}

// SendToUser sends a frame to each of a user's connections, on every node; Sent.Count is how
// many (0 for a user with none: not an error).
func (s *System) SendToUser(ctx context.Context, m SendToUser) (Sent, error) {
	var sent Sent
	err := s.call(ctx, "send_to_user", m, &sent, write)
	return sent, err
}

// UserConnection is one connection of a user in UserInfo.
type UserConnection struct {
	ClientID    string   `json:"clientId"`
	Groups      []string `json:"groups"`
	ConnectedAt int64    `json:"connectedAt"` // Unix milliseconds
	Connected   bool     `json:"connected"`   // false while a recovery connection is away
	Extend      string   `json:"extend"`
}

// UserInfo is get_user_info's reply: the user's connections, oldest first, and every group
// any of them is in. Online is true while any of them is connected.
type UserInfo struct {
	Online  bool             `json:"online"`
	UserID  string           `json:"userId"`
	Clients []UserConnection `json:"clients"`
	Groups  []string         `json:"groups"`
}

// GetUserInfo returns a user's connections and groups, on every node.
func (s *System) GetUserInfo(ctx context.Context, userID string) (UserInfo, error) {
	var info UserInfo
	err := s.call(ctx, "get_user_info", map[string]string{"userId": userID}, &info, read)
	return info, err
}

// CloseUser closes every connection of a user (close code 1000), on every node, and returns
// how many it closed: "log out everywhere".
func (s *System) CloseUser(ctx context.Context, userID string) (int, error) {
	var closed struct {
		Count int `json:"count"`
	}
	err := s.call(ctx, "close_user", map[string]string{"userId": userID}, &closed, write)
	return closed.Count, err
}

// Page asks for one page of a paginated read: Limit 1 to 10,000 (0: the server's 1,000), and
// the Cursor of the previous page ("" for the first).
type Page struct {
	Limit  int
	Cursor string
}

func (p Page) body(fields map[string]any) map[string]any {
	if p.Limit != 0 {
		fields["limit"] = p.Limit
	}
	if p.Cursor != "" {
		fields["cursor"] = p.Cursor
	}
	return fields
}

// OnlineUser is one user in OnlineUsers with its connections in the group (or system).
type OnlineUser struct {
	UserID  string `json:"userId"`
	Clients int    `json:"clients"`
}

// OnlineUsers is one page of get_online_users. UserCount and ClientCount are totals of the
// whole query; Cursor is "" on the last page.
type OnlineUsers struct {
	Users       []OnlineUser `json:"users"`
	UserCount   int          `json:"userCount"`
	ClientCount int          `json:"clientCount"`
	Cursor      string       `json:"cursor"`
}

// GetOnlineUsers returns one page of the users online in a group (groupName "": the system),
// in userId order, counted once however many nodes their connections are on.
func (s *System) GetOnlineUsers(ctx context.Context, groupName string, page Page) (OnlineUsers, error) {
	fields := map[string]any{}
	if groupName != "" {
		fields["groupName"] = groupName
	}
	var users OnlineUsers
	err := s.call(ctx, "get_online_users", page.body(fields), &users, read)
	return users, err
}

// ListedClient is one client in ListClients.
type ListedClient struct {
	ClientID    string   `json:"clientId"`
	UserID      string   `json:"userId"`
	Groups      []string `json:"groups"`
	ConnectedAt int64    `json:"connectedAt"` // Unix milliseconds
	Connected   bool     `json:"connected"`
}

// ListedClients is one page of list_clients; Cursor is "" on the last page.
type ListedClients struct {
	Clients []ListedClient `json:"clients"`
	Cursor  string         `json:"cursor"`
}

// ListClients returns one page of every client of the system, in clientId order: how a
// backend that missed events (a webhook batch with Dropped) reads the state again.
func (s *System) ListClients(ctx context.Context, page Page) (ListedClients, error) {
	var clients ListedClients
	err := s.call(ctx, "list_clients", page.body(map[string]any{}), &clients, read)
	return clients, err
}

// EachOnlineUser calls fn for every user online in a group (groupName "": the system), page
// after page from page (Page{} for the start, with the server's page size), until the last
// page or fn returns an error (which it returns).
func (s *System) EachOnlineUser(ctx context.Context, groupName string, page Page, fn func(OnlineUser) error) error {
	return walk(page, func(p Page) ([]OnlineUser, string, error) {
		users, err := s.GetOnlineUsers(ctx, groupName, p)
		return users.Users, users.Cursor, err
	}, fn)
}

// EachClient calls fn for every client of the system, page after page from page, as
// EachOnlineUser does: the re-sync after a webhook batch with Dropped.
func (s *System) EachClient(ctx context.Context, page Page, fn func(ListedClient) error) error {
	return walk(page, func(p Page) ([]ListedClient, string, error) {
		clients, err := s.ListClients(ctx, p)
		return clients.Clients, clients.Cursor, err
	}, fn)
}

// walk reads pages with fetch from page on, calling fn for each item, until a page has no
// cursor or fn or fetch fails.
func walk[T any](page Page, fetch func(Page) ([]T, string, error), fn func(T) error) error {
	for {
		items, cursor, err := fetch(page)
		if err != nil {
			return err
		}
		for _, item := range items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if cursor == "" {
			return nil
		}
		page.Cursor = cursor
	}
}
