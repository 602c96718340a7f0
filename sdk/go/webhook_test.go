package wshub_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	wshub "github.com/wshub/wshub-go"
)

// delivery is one POST wshub made, as it arrived.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver records wshub's webhook POSTs, answering 204.
func receiver(t *testing.T) (*httptest.Server, chan delivery) {
	deliveries := make(chan delivery, 16)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		deliveries <- delivery{r.Header.Clone(), body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(server.Close)
	return server, deliveries
}

const webhookSecret = "a-webhook-secret-of-some-length"

// aRealBatch makes wshub post a batch (a client's client_online) and returns it as it came.
func aRealBatch(t *testing.T) (delivery, string) {
	_, s, baseURL := registered(t)
	server, deliveries := receiver(t)
	must(t, s.UpdateSystem(context.Background(), wshub.UpdateSystem{
		Webhook: &wshub.Webhook{URL: server.URL, Secret: webhookSecret, Events: []string{"client_online"}},
	}))
	conn := dial(t, baseURL, s.ID())
	select {
	case d := <-deliveries:
		return d, conn.ClientID
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook batch within 10 s")
	}
	panic("unreachable")
}

func TestVerifyWebhookAcceptsWshubsBatchAndRefusesTamperedOrStaleOnes(t *testing.T) {
	d, clientID := aRealBatch(t)

	batch, err := wshub.VerifyWebhook(webhookSecret, d.header, d.body, 0)
	must(t, err)
	if len(batch.Events) != 1 || batch.Events[0].Name != "client_online" || batch.Events[0].ClientID != clientID || batch.Events[0].ID == "" || batch.Events[0].TimeMs == 0 || batch.Dropped != 0 {
		t.Fatalf("the batch: %+v", batch)
	}

	tampered := bytes.Replace(d.body, []byte(clientID), []byte("someone-else"), 1)
	if _, err := wshub.VerifyWebhook(webhookSecret, d.header, tampered, 0); !errors.Is(err, wshub.ErrBadSignature) {
		t.Fatalf("a tampered body: %v", err)
	}
	if _, err := wshub.VerifyWebhook("another-secret-entirely", d.header, d.body, 0); !errors.Is(err, wshub.ErrBadSignature) {
		t.Fatalf("another secret: %v", err)
	}
	unsigned := d.header.Clone()
	unsigned.Del(wshub.SignatureHeader)
	if _, err := wshub.VerifyWebhook(webhookSecret, unsigned, d.body, 0); !errors.Is(err, wshub.ErrBadSignature) {
		t.Fatalf("no signature: %v", err)
	}

	// The same genuine batch, judged later than its tolerance allows.
	time.Sleep(1100 * time.Millisecond)
	if _, err := wshub.VerifyWebhook(webhookSecret, d.header, d.body, time.Second); !errors.Is(err, wshub.ErrStaleTimestamp) {
		t.Fatalf("a stale batch: %v", err)
	}
	// A replayed body with a timestamp swapped for a fresh one no longer matches its signature.
	replayed := d.header.Clone()
	replayed.Set(wshub.TimestampHeader, strconv.FormatInt(time.Now().Unix(), 10))
	if _, err := wshub.VerifyWebhook(webhookSecret, replayed, d.body, 0); !errors.Is(err, wshub.ErrBadSignature) {
		t.Fatalf("a fresh timestamp on an old signature: %v", err)
	}
}

func TestWebhookHandlerReceivesLiveBatches(t *testing.T) {
	_, s, baseURL := registered(t)
	batches := make(chan *wshub.WebhookBatch, 16)
	failOnce := true
	handler := wshub.WebhookHandler(webhookSecret, 0, func(_ context.Context, b *wshub.WebhookBatch) error {
		if failOnce {
			// wshub sends a batch the handler failed again, the same events with the same ids.
			failOnce = false
			batches <- b
			return errors.New("the database is busy")
		}
		batches <- b
		return nil
	})
	server := httptest.NewServer(handler)
	defer server.Close()
	must(t, s.UpdateSystem(context.Background(), wshub.UpdateSystem{
		Webhook: &wshub.Webhook{URL: server.URL, Secret: webhookSecret, Events: []string{"client_online"}},
	}))
	conn := dial(t, baseURL, s.ID())

	var first, second *wshub.WebhookBatch
	for _, got := range []**wshub.WebhookBatch{&first, &second} {
		select {
		case *got = <-batches:
		case <-time.After(10 * time.Second):
			t.Fatal("no batch within 10 s")
		}
	}
	if first.SystemID != s.ID() || len(first.Events) != 1 || first.Events[0].ClientID != conn.ClientID {
		t.Fatalf("the batch: %+v", first)
	}
	if second.Events[0].ID != first.Events[0].ID {
		t.Fatalf("the retry carries the same event id: %+v then %+v", first.Events, second.Events)
	}

	// What the handler answers someone who is not wshub.
	forged := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(`{"systemId":"x","events":[]}`)))
	forged.Header.Set(wshub.TimestampHeader, strconv.FormatInt(time.Now().Unix(), 10))
	forged.Header.Set(wshub.SignatureHeader, "sha256=00")
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, forged)
	if recorder.Code != http.StatusUnauthorized {
		t.Fatalf("a forged batch: %d", recorder.Code)
	}
}
