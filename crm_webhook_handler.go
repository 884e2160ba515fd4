package kommo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"
)

// MaxCRMWebhookBody caps the body ParseCRMWebhook reads.
const MaxCRMWebhookBody = 1 << 20

// CRMWebhookTimeout is how long Kommo waits for a CRM webhook's answer (2
// seconds, per its webhooks page); CRMWebhookHandler gives its callback
// this long. A failed or late answer is retried after 5 and 15 minutes,
// and more than 100 in two hours disable the webhook.
const CRMWebhookTimeout = 2 * time.Second

// ParseCRMWebhook reads a CRM webhook request: a POST with a
// form-encoded body of at most MaxCRMWebhookBody bytes. A longer body
// matches ErrWebhookTooLarge, another content type or a malformed form
// ErrWebhookMalformed. Kommo does not sign CRM webhooks; authenticate the
// URL (an unguessable token in its path).
//
// POST {destination} (application/x-www-form-urlencoded)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/webhooks-format
func ParseCRMWebhook(r *http.Request) (*CRMWebhook, error) {
	if r == nil || r.Body == nil {
		return nil, fmt.Errorf("kommo: CRM webhook: no body: %w", ErrWebhookMalformed)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, fmt.Errorf("kommo: CRM webhook: content type %q is not a form: %w", ct, ErrWebhookMalformed)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxCRMWebhookBody+1))
	if err != nil {
		return nil, fmt.Errorf("kommo: CRM webhook: %v: %w", err, ErrWebhookBodyRead)
	}
	if len(body) > MaxCRMWebhookBody {
		return nil, fmt.Errorf("kommo: CRM webhook: body over %d bytes: %w", MaxCRMWebhookBody, ErrWebhookTooLarge)
	}
	return ParseCRMWebhookBody(body)
}

// CRMWebhookFunc handles one parsed CRM webhook.
type CRMWebhookFunc func(ctx context.Context, hook *CRMWebhook) error

// CRMWebhookHandler returns an http.Handler for a CRM webhook destination,
// like NewWebhookHandler for the channel's: it answers 405 to anything but
// POST, 413 to a body over MaxCRMWebhookBody, 400 to a malformed one,
// calls fn with a context ending after CRMWebhookTimeout, and answers 200
// when fn returns nil, 500 otherwise (Kommo then retries later). Keep fn
// short: enqueue and return. logger may be nil.
//
//	mux.Handle("POST /kommo/crm/"+token, kommo.CRMWebhookHandler(func(ctx context.Context, h *kommo.CRMWebhook) error {
//		for _, ev := range h.Events {
//			if t, ok := ev.(*kommo.CRMTalkEvent); ok { talks.Remember(t.ChatID, t.TalkID) }
//		}
//		return nil
//	}, nil))
func CRMWebhookHandler(fn CRMWebhookFunc, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		hook, err := ParseCRMWebhook(r)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, ErrWebhookTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			logger.LogAttrs(r.Context(), slog.LevelWarn, "kommo: CRM webhook refused", slog.Int("status", status), slog.String("error", err.Error()))
			http.Error(w, http.StatusText(status), status)
			return
		}
		if fn != nil {
			ctx, cancel := context.WithTimeout(r.Context(), CRMWebhookTimeout)
			err := fn(ctx, hook)
			cancel()
			if err != nil {
				logger.LogAttrs(r.Context(), slog.LevelError, "kommo: CRM webhook callback failed",
					slog.Int("account_id", hook.Account.ID), slog.String("error", err.Error()))
				http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
}
