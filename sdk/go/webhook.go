package wshub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers wshub signs a webhook batch with.
const (
	TimestampHeader = "X-Wshub-Timestamp"
	SignatureHeader = "X-Wshub-Signature"
)

// DefaultWebhookTolerance is how far a batch's timestamp may be from now (either way).
const DefaultWebhookTolerance = 5 * time.Minute

// Why VerifyWebhook refuses a batch (use errors.Is).
var (
	ErrBadSignature   = errors.New("wshub webhook: signature missing or wrong")
	ErrStaleTimestamp = errors.New("wshub webhook: timestamp missing or outside the tolerance")
)

// WebhookBatch is one webhook POST: events of one system, oldest first. Dropped counts events
// lost before this batch (a full queue, retries given up): re-sync when it is not 0.
type WebhookBatch struct {
	SystemID string  `json:"systemId"`
	Events   []Event `json:"events"`
	Dropped  int     `json:"dropped"`
}

// Event is one event; which fields are set depends on Name (see socket.md, Webhooks).
// Deduplicate by ID: delivery is at least once.
type Event struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"` // client_online, client_offline, group_joined, ...
	TimeMs    int64           `json:"timeMs"`
	ClientID  string          `json:"clientId,omitempty"`
	UserID    string          `json:"userId,omitempty"`
	GroupName string          `json:"groupName,omitempty"`
	Groups    []string        `json:"groups,omitempty"`
	Extend    string          `json:"extend,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Code      *int            `json:"code,omitempty"` // client_offline's close code; nil for none
	Data      json.RawMessage `json:"data,omitempty"` // client_message's data, as the client sent it
}

// VerifyWebhook checks a batch's signature (HMAC-SHA256 of "<timestamp>.<body>" with the
// system's webhook secret) and that its timestamp is within tolerance of now, then parses it.
// A tolerance of 0 means DefaultWebhookTolerance.
func VerifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration) (*WebhookBatch, error) {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	stamp := header.Get(TimestampHeader)
	seconds, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return nil, ErrStaleTimestamp
	}
	age := time.Since(time.Unix(seconds, 0))
	if age > tolerance || age < -tolerance {
		return nil, ErrStaleTimestamp
	}
	signature := header.Get(SignatureHeader)
	if !strings.HasPrefix(signature, "sha256=") {
		return nil, ErrBadSignature
	}
	givenMAC, err := hex.DecodeString(strings.TrimPrefix(signature, "sha256="))
	if err != nil {
		return nil, ErrBadSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stamp))
	mac.Write([]byte("."))
	mac.Write(body)
	if !hmac.Equal(givenMAC, mac.Sum(nil)) {
		return nil, ErrBadSignature
	}
	var batch WebhookBatch
	if err := json.Unmarshal(body, &batch); err != nil {
		return nil, fmt.Errorf("wshub webhook: the body is not a batch: %w", err)
	}
	return &batch, nil
}

// maxWebhookBody bounds what WebhookHandler reads (a batch is at most 100 events).
const maxWebhookBody = 16 << 20

// WebhookHandler receives wshub's webhook POSTs: it verifies each batch and passes it to
// handle. It answers 204 when handle returns nil (wshub counts the batch delivered), 401 for a
// bad signature or timestamp, 400 for a body that is not a batch, and 500 when handle fails,
// so wshub sends the batch again later.
func WebhookHandler(secret string, tolerance time.Duration, handle func(context.Context, *WebhookBatch) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		batch, err := VerifyWebhook(secret, r.Header, body, tolerance)
		switch {
		case errors.Is(err, ErrBadSignature), errors.Is(err, ErrStaleTimestamp):
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := handle(r.Context(), batch); err != nil {
			http.Error(w, "not handled: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
