package kommo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/kommo-go/kommo"
)

// A webhook handler that only enqueues and answers at once: Kommo sends
// each hook once and waits at most 5 seconds for the 200, so delivery to
// the messenger happens later, off the request.
func ExampleNewWebhookHandler() {
	const secret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e" // the channel secret

	type job struct {
		scopeID string
		event   kommo.WebhookEvent
	}
	queue := make(chan job, 1024) // stands in for a durable queue

	h, err := kommo.NewWebhookHandler(secret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		select {
		case queue <- job{kommo.WebhookScopeID(ctx), ev}:
			return nil // 200: the event is safe
		case <-ctx.Done():
			return ctx.Err() // 500, reported to the error hook
		}
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kommo/{scope_id}", h)

	// What Kommo sends: a signed outgoing message.
	body := `{"account_id":"52e591f7-c98f-4255-8495-827210138c81","time":1700000005,` +
		`"message":{"receiver":{"id":"2ed64e26-7c3b-4a52-9d7e-0f4b8f3e4d11","phone":"79161234567","email":"","client_id":"my-user-1"},` +
		`"sender":{"id":"76fc2bea-9a0b-4e5c-8d1f-2b3c4d5e6f70","name":"Anna"},` +
		`"conversation":{"id":"8e4d4baa-1c2d-4e3f-9a8b-7c6d5e4f3a21","client_id":"my-chat-1"},` +
		`"timestamp":1700000004,"msec_timestamp":1700000004980,` +
		`"message":{"id":"0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a","type":"text","text":"Hello"}}}`
	// Kommo puts the scope id ("{channel_id}_{account amojo id}") in the URL;
	// the handler checks that its account is the body's account_id.
	scopeID := kommo.ScopeID("344a5002-f8ca-454d-af3d-396180102ac7", "52e591f7-c98f-4255-8495-827210138c81")
	req := httptest.NewRequest(http.MethodPost, "/kommo/"+scopeID, strings.NewReader(body))
	req.Header.Set("X-Signature", kommo.SignWebhookBody([]byte(body), secret))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println("status:", rec.Code)

	// A worker drains the queue.
	j := <-queue
	if m, ok := j.event.(*kommo.MessageEvent); ok {
		fmt.Println("scope:", j.scopeID)
		fmt.Printf("%s from %s to chat %s: %q\n", m.Message.ID, m.Sender.Name, m.Conversation.ClientID, m.Message.Text)
	}

	// A forged hook never reaches the queue.
	req = httptest.NewRequest(http.MethodPost, "/kommo/"+scopeID, strings.NewReader(body))
	req.Header.Set("X-Signature", kommo.SignWebhookBody([]byte(body), "not-the-secret"))
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println("forged:", rec.Code, "queued:", len(queue))

	// Output:
	// status: 200
	// scope: 344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81
	// 0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a from Anna to chat my-chat-1: "Hello"
	// forged: 401 queued: 0
}

// Verifying and decoding a hook inside your own handler.
func ExampleParseWebhookBody() {
	const secret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	body := []byte(`{"account_id":"52e591f7-c98f-4255-8495-827210138c81","time":1637087558,` +
		`"action":{"reaction":{"msgid":"0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a",` +
		`"user":{"id":"76fc2bea-9a0b-4e5c-8d1f-2b3c4d5e6f70"},"conversation":{"id":"8e4d4baa-1c2d-4e3f-9a8b-7c6d5e4f3a21","client_id":"my-chat-1"},` +
		`"type":"react","emoji":"\ud83d\udc4d"}}}`)
	signature := kommo.SignWebhookBody(body, secret) // the X-Signature header

	ev, err := kommo.ParseWebhookBody(body, signature, secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch e := ev.(type) {
	case *kommo.ReactionEvent:
		fmt.Println(e.Kind(), e.IsReact(), e.Emoji, e.MessageID())
	case *kommo.UnknownEvent:
		fmt.Println("unknown hook, raw:", string(e.Raw))
	}
	// Output:
	// reaction true 👍 0371a0ff-5e6d-4c3b-a291-8f7e6d5c4b3a
}
