package kommo

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/kommo-go/kommo/internal/testkit"
)

// FuzzParseWebhook feeds arbitrary bodies and signatures to the webhook
// parser. Seeds: every fixture in testdata/webhooks with its valid
// signature, with a trailing newline, with a wrong signature and with none.
//
//	go test -run='^$' -fuzz=FuzzParseWebhook -fuzztime=60s .
func FuzzParseWebhook(f *testing.F) {
	files := testkit.FixtureGlob(f, "webhooks", "*.json")
	if len(files) == 0 {
		f.Fatal("no fixtures")
	}
	for _, file := range files {
		body := testkit.Fixture(f, file)
		sig := SignWebhookBody(body, webhookTestSecret)
		f.Add(body, sig)
		f.Add(append(bytes.Clone(body), '\n'), sig)
		f.Add(body, SignWebhookBody(body, webhookOldSecret))
		f.Add(body, "")
		f.Add(body[:len(body)/2], SignWebhookBody(body[:len(body)/2], webhookTestSecret))
	}
	f.Add([]byte(`{"message":{"message":{"file_size":"1"}}}`), "")
	f.Add([]byte(`null`), "")
	f.Add([]byte(``), "zz")

	f.Fuzz(func(t *testing.T, body []byte, signature string) {
		// 1. Whatever the signature, no panic and a classified error.
		ev, err := ParseWebhookBody(body, signature, webhookTestSecret)
		webhookCheckResult(t, body, ev, err, true)

		// 2. With a valid signature the body either decodes or is
		// malformed: never a signature error.
		valid := SignWebhookBody(body, webhookTestSecret)
		ev, err = ParseWebhookBody(body, valid, webhookTestSecret)
		webhookCheckResult(t, body, ev, err, false)
		if err != nil && !errors.Is(err, ErrWebhookMalformed) {
			t.Fatalf("valid signature: got %v, want a decoded event or ErrWebhookMalformed", err)
		}
		if err == nil {
			if !bytes.Equal(ev.Envelope().Raw, body) {
				t.Fatal("Raw differs from the signed body")
			}
			// Decoded events always encode again.
			if _, merr := json.Marshal(ev); merr != nil {
				t.Fatalf("marshal %T: %v", ev, merr)
			}
		}

		// 3. A signature from another secret never verifies.
		if _, err := ParseWebhookBody(body, SignWebhookBody(body, webhookOldSecret), webhookTestSecret, WithWebhookStrictSignature()); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("foreign signature: got %v, want ErrInvalidSignature", err)
		}
	})
}

func webhookCheckResult(t *testing.T, body []byte, ev WebhookEvent, err error, anySig bool) {
	t.Helper()
	if err != nil {
		if ev != nil {
			t.Fatalf("event %T returned with error %v", ev, err)
		}
		known := errors.Is(err, ErrWebhookMalformed) || errors.Is(err, ErrInvalidSignature) ||
			(anySig && errors.Is(err, ErrWebhookTooLarge))
		if !known {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	if ev == nil {
		t.Fatal("nil event without error")
	}
	switch e := ev.(type) {
	case *MessageEvent, *TypingEvent, *ReactionEvent:
	case *UnknownEvent:
		if e.Err != nil && !errors.Is(e.Err, ErrWebhookMalformed) {
			t.Fatalf("UnknownEvent.Err not classified: %v", e.Err)
		}
	default:
		t.Fatalf("unexpected event type %T", ev)
	}
	if k := ev.Kind(); k != WebhookKindMessage && k != WebhookKindTyping && k != WebhookKindReaction && k != WebhookKindUnknown {
		t.Fatalf("unexpected kind %q", k)
	}
}
