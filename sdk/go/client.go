package wshub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults a Client starts with; each has an Option.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultRetries  = 2
	DefaultTokenTTL = 10 * time.Minute
	// A minted token is replaced this long before it expires, so a call never carries one
	// that expires on the way.
	tokenRefreshMargin = 30 * time.Second
	firstRetryDelay    = 100 * time.Millisecond
)

// Client talks to one wshub server. It is safe for concurrent use.
type Client struct {
	baseURL  string
	http     *http.Client
	retries  int
	token    string
	secret   string
	tokenTTL time.Duration

	// The token minted from secret, and when it stops being used; guarded by mu.
	mu          sync.Mutex
	minted      string
	mintedUntil time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes every call carry this API token (admin, or scoped to one system).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithSecret makes the client mint its own short-lived admin tokens from the server's JWT
// secret (the server's --jwt-secret / WSHUB_JWT_SECRET).
func WithSecret(secret string) Option { return func(c *Client) { c.secret = secret } }

// WithTokenTTL sets how long tokens minted by WithSecret live (default 10 minutes).
func WithTokenTTL(ttl time.Duration) Option { return func(c *Client) { c.tokenTTL = ttl } }

// WithHTTPClient replaces the http.Client (its Timeout included).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTimeout sets the time limit of one HTTP attempt (default 10 s).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		copied := *c.http
		copied.Timeout = d
		c.http = &copied
	}
}

// WithRetries sets how many times a read (CheckToken, GetSystem, GetOnlineList, GetAllGroups,
// GetClientInfo, GetUserInfo, GetOnlineUsers, ListClients) is retried after a transport error or a 502/503/504, backing off from 100 ms.
// Calls that change state are never retried: a retry could apply them twice.
func WithRetries(n int) Option { return func(c *Client) { c.retries = n } }

// New returns a client for the server at baseURL (for example "http://127.0.0.1:7800").
// Without WithToken or WithSecret, calls carry no token (a server run with --api-auth none).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		baseURL:  strings.TrimRight(baseURL, "/"),
		http:     &http.Client{Timeout: DefaultTimeout},
		retries:  DefaultRetries,
		tokenTTL: DefaultTokenTTL,
	}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Error is a reply of the server other than success: the HTTP status and the envelope's code
// and msg (which names the field or the cause).
type Error struct {
	Method string // the REST method called, e.g. "send_to_client"
	Status int    // the HTTP status: 400, 401, 403, 404, 409, 413, 503, ...
	Code   int    // the envelope's code (-1 unless the server names a more specific one)
	Msg    string // the envelope's msg
}

func (e *Error) Error() string {
	return fmt.Sprintf("wshub %s: %d %s", e.Method, e.Status, e.Msg)
}

// IsStatus reports whether err is an *Error with that HTTP status.
func IsStatus(err error, status int) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.Status == status
}

// envelope is every reply's shape.
type envelope struct {
	Code int             `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// kind says whether a call may be retried.
type kind bool

const (
	write kind = false
	read  kind = true
)

// call posts body to /api/<method> and decodes the reply's data into out (nil: ignored).
func (c *Client) call(ctx context.Context, method, systemID string, body, out any, k kind) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("wshub %s: encoding the request: %w", method, err)
	}
	attempts := 1
	if k == read {
		attempts += c.retries
	}
	delay := firstRetryDelay
	for attempt := 1; ; attempt++ {
		err = c.attempt(ctx, method, systemID, payload, out)
		if attempt >= attempts || !retryable(ctx, err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		switch apiErr.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return true
}

func (c *Client) attempt(ctx context.Context, method, systemID string, payload []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/api/"+method, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("wshub %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if systemID != "" {
		req.Header.Set("SystemId", systemID)
	}
	token, err := c.bearer()
	if err != nil {
		return fmt.Errorf("wshub %s: %w", method, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("wshub %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("wshub %s: reading the reply: %w", method, err)
	}
	var reply envelope
	if err := json.Unmarshal(raw, &reply); err != nil {
		// Not wshub's envelope (a proxy's error page, say): the status and the start of the body.
		return &Error{Method: method, Status: resp.StatusCode, Code: -1, Msg: snippet(raw)}
	}
	if resp.StatusCode != http.StatusOK || reply.Code != 0 {
		return &Error{Method: method, Status: resp.StatusCode, Code: reply.Code, Msg: reply.Msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return fmt.Errorf("wshub %s: decoding the reply's data: %w", method, err)
	}
	return nil
}

func snippet(raw []byte) string {
	const most = 200
	if len(raw) > most {
		return string(raw[:most]) + "…"
	}
	return string(raw)
}

// bearer is the token a call carries: the given one, else one minted from the secret.
func (c *Client) bearer() (string, error) {
	if c.token != "" || c.secret == "" {
		return c.token, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.minted == "" || now.After(c.mintedUntil) {
		token, err := MintToken(c.secret, "", c.tokenTTL)
		if err != nil {
			return "", err
		}
		c.minted = token
		c.mintedUntil = now.Add(c.tokenTTL - tokenRefreshMargin)
	}
	return c.minted, nil
}
