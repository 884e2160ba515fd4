package kommo

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// CRMWebhooksService handles /api/v4/webhooks: subscriptions of a URL to
// CRM events (talks added or changed, WhatsApp template reviews, leads,
// contacts, …). An account has at most 100 webhooks; subscribing a URL
// that already has one updates its events. The events arrive as
// form-encoded POSTs; read them with ParseCRMWebhook or CRMWebhookHandler.
// Kommo does not sign them: put an unguessable token in the destination
// URL and check it.
//
// amoCRM: https://www.amocrm.ru/developers/content/crm_platform/webhooks-api
type CRMWebhooksService service

// CRM webhook event names (CRMWebhookSubscription.Settings), from the
// webhooks API page; the talk and template events are the ones a chat
// integration needs.
const (
	CRMEventAddTalk               = "add_talk"
	CRMEventUpdateTalk            = "update_talk"
	CRMEventAddChatTemplateReview = "add_chat_template_review"
	CRMEventAddLead               = "add_lead"
	CRMEventUpdateLead            = "update_lead"
	CRMEventStatusLead            = "status_lead"
	CRMEventAddContact            = "add_contact"
	CRMEventUpdateContact         = "update_contact"
)

// CRMWebhookSubscription is a webhook of the account.
type CRMWebhookSubscription struct {
	ID          int    `json:"id"`
	Destination string `json:"destination"`
	// CreatedAt and UpdatedAt are Unix seconds.
	CreatedAt int64 `json:"created_at"`
	UpdatedAt int64 `json:"updated_at"`
	AccountID int   `json:"account_id"`
	// CreatedBy is the id of the user who created it.
	CreatedBy int `json:"created_by"`
	Sort      int `json:"sort"`
	// Disabled is set when Kommo turned the webhook off (over 100 failed
	// deliveries in two hours) or a user did.
	Disabled bool `json:"disabled"`
	// Settings are the subscribed events (CRMEvent... constants).
	Settings []string `json:"settings"`
}

// CRMWebhookSubscribeRequest is the body of CRMWebhooks.Subscribe.
type CRMWebhookSubscribeRequest struct {
	// Destination is the absolute http(s) URL the events are posted to.
	Destination string `json:"destination"`
	// Settings are the events (CRMEvent... constants); at least one.
	Settings []string `json:"settings"`
	// Sort orders the account's webhooks (optional).
	Sort int `json:"sort,omitempty"`
}

// CRMWebhookListOptions filters CRMWebhooks.List.
type CRMWebhookListOptions struct {
	// Destination keeps the webhook with exactly this URL.
	Destination string
}

// List returns the account's webhooks (all integrations'), optionally the
// one with a destination. opts may be nil.
//
// GET /api/v4/webhooks
//
//	hooks, _, err := client.CRMWebhooks.List(ctx, &kommo.CRMWebhookListOptions{Destination: url})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/webhooks-api
func (s *CRMWebhooksService) List(ctx context.Context, opts *CRMWebhookListOptions) ([]*CRMWebhookSubscription, *Response, error) {
	q := url.Values{}
	if opts != nil && opts.Destination != "" {
		q.Set("filter[destination]", opts.Destination)
	}
	items, _, resp, err := crmListPage[*CRMWebhookSubscription](ctx, s.client, "CRMWebhooks.List", "api/v4/webhooks", q, "webhooks")
	if err != nil {
		return nil, resp, err
	}
	return items, resp, nil
}

// Subscribe subscribes a URL to events and returns the webhook (Kommo
// answers 201); a URL that already has a webhook gets these events
// instead.
//
// POST /api/v4/webhooks
//
//	hook, _, err := client.CRMWebhooks.Subscribe(ctx, &kommo.CRMWebhookSubscribeRequest{
//		Destination: "https://bridge.example/kommo/crm/" + token,
//		Settings:    []string{kommo.CRMEventAddTalk, kommo.CRMEventUpdateTalk},
//	})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/webhooks-api
func (s *CRMWebhooksService) Subscribe(ctx context.Context, req *CRMWebhookSubscribeRequest) (*CRMWebhookSubscription, *Response, error) {
	v := validator{op: "CRMWebhooks.Subscribe"}
	if req == nil {
		v.addf("request: nil")
	} else {
		crmHookCheckDestination(&v, req.Destination)
		if len(req.Settings) == 0 {
			v.addf("settings: at least one event is required")
		}
		for i, ev := range req.Settings {
			if strings.TrimSpace(ev) == "" || strings.ContainsAny(ev, ", ") {
				v.addf("settings[%d]: %q is not an event name", i, ev)
			}
		}
		if req.Sort < 0 {
			v.addf("sort: must not be negative, got %d", req.Sort)
		}
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	out := new(CRMWebhookSubscription)
	resp, err := s.client.do(ctx, &call{op: "CRMWebhooks.Subscribe", api: crmAPI, method: http.MethodPost, path: "api/v4/webhooks", body: req, out: out})
	if err != nil {
		return nil, resp, err
	}
	return out, resp, nil
}

// Unsubscribe removes the webhook of a destination URL (Kommo answers 204;
// an unknown URL fails with an error matching ErrNotFound).
//
// DELETE /api/v4/webhooks
//
//	_, err := client.CRMWebhooks.Unsubscribe(ctx, "https://bridge.example/kommo/crm/"+token)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/webhooks-api
func (s *CRMWebhooksService) Unsubscribe(ctx context.Context, destination string) (*Response, error) {
	v := validator{op: "CRMWebhooks.Unsubscribe"}
	crmHookCheckDestination(&v, destination)
	if err := v.err(); err != nil {
		return nil, err
	}
	body := struct {
		Destination string `json:"destination"`
	}{destination}
	return s.client.do(ctx, &call{op: "CRMWebhooks.Unsubscribe", api: crmAPI, method: http.MethodDelete, path: "api/v4/webhooks", body: body})
}

func crmHookCheckDestination(v *validator, dest string) {
	switch {
	case strings.TrimSpace(dest) == "":
		v.addf("destination: required")
	case !absoluteHTTPURL(dest):
		v.addf("destination: %s is not an absolute http or https URL", strconv.Quote(dest))
	}
}
