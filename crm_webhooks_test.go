package kommo

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/testkit"
)

func TestCRMWebhooksList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/webhooks", h.reply(200, "crm", "webhooks_list.json"))
	hooks, _, err := h.client.CRMWebhooks.List(t.Context(), &CRMWebhookListOptions{Destination: "https://webhook-uri.com"})
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/webhooks", req.Path)
	assert.Equal(t, "filter%5Bdestination%5D=https%3A%2F%2Fwebhook-uri.com", req.RawQuery)
	require.Len(t, hooks, 2)
	assert.Equal(t, CRMWebhookSubscription{ID: 839656, Destination: "https://webhook-uri.com", CreatedAt: 1575539157, UpdatedAt: 1575539157,
		AccountID: 321321, CreatedBy: 123123, Sort: 1, Settings: []string{"add_talk"}}, *hooks[0])
	assert.True(t, hooks[1].Disabled)
}

func TestCRMWebhooksSubscribeUnsubscribe(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/webhooks", h.reply(201, "crm", "webhook_subscribe.json"))
	h.mux.HandleFunc("DELETE /api/v4/webhooks", h.reply(204))
	hook, resp, err := h.client.CRMWebhooks.Subscribe(t.Context(), &CRMWebhookSubscribeRequest{
		Destination: "https://example.test", Settings: []string{CRMEventAddTalk, CRMEventUpdateTalk}, Sort: 10})
	require.NoError(t, err)
	assert.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, 1056949, hook.ID)
	assert.Equal(t, []string{"add_talk", "update_talk"}, hook.Settings)
	_, err = h.client.CRMWebhooks.Unsubscribe(t.Context(), "https://example.test")
	require.NoError(t, err)
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, `{"destination":"https://example.test","settings":["add_talk","update_talk"],"sort":10}`, string(reqs[0].Body))
	assert.Equal(t, http.MethodDelete, reqs[1].Method)
	assert.Equal(t, `{"destination":"https://example.test"}`, string(reqs[1].Body))
	assert.Equal(t, "application/json", reqs[1].Header.Get("Content-Type"))
}

func TestCRMWebhooksValidation(t *testing.T) {
	t.Parallel()
	runValidationCases(t, []validationCase{
		{name: "nil", op: "CRMWebhooks.Subscribe", problems: []string{"request: nil"},
			call: func(ctx context.Context, c *Client) error { _, _, err := c.CRMWebhooks.Subscribe(ctx, nil); return err }},
		{name: "fields", op: "CRMWebhooks.Subscribe", problems: []string{
			`destination: "/hook" is not an absolute http or https URL`, "settings: at least one event is required", "sort: must not be negative, got -1"},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.CRMWebhooks.Subscribe(ctx, &CRMWebhookSubscribeRequest{Destination: "/hook", Sort: -1})
				return err
			}},
		{name: "event name", op: "CRMWebhooks.Subscribe", problems: []string{`settings[1]: "add_lead,add_talk" is not an event name`},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.CRMWebhooks.Subscribe(ctx, &CRMWebhookSubscribeRequest{Destination: "https://a.example/", Settings: []string{"add_talk", "add_lead,add_talk"}})
				return err
			}},
		{name: "unsubscribe", op: "CRMWebhooks.Unsubscribe", problems: []string{"destination: required"},
			call: func(ctx context.Context, c *Client) error { _, err := c.CRMWebhooks.Unsubscribe(ctx, " "); return err }},
	})
}

func TestParseCRMWebhookTalks(t *testing.T) {
	t.Parallel()
	hook, err := ParseCRMWebhookBody(testkit.Fixture(t, "webhooks", "crm_talk_add.form"))
	require.NoError(t, err)
	assert.Equal(t, CRMWebhookAccount{ID: 29420107, Subdomain: "example", Self: "https://example.kommo.com"}, hook.Account)
	require.Len(t, hook.Events, 2)
	add, ok := hook.Events[0].(*CRMTalkEvent)
	require.True(t, ok, "%T", hook.Events[0])
	assert.Equal(t, "add_talk", add.CRMEventName())
	assert.Equal(t, 117, add.TalkID)
	assert.Equal(t, "8e4d4baa-3f0e-4b8e-9d4e-3f1f2a6c0d11", add.ChatID)
	assert.Equal(t, 3102959, add.ContactID)
	assert.Equal(t, 4100001, add.EntityID)
	assert.Equal(t, "lead", add.EntityType)
	assert.True(t, add.IsInWork)
	assert.False(t, add.IsRead)
	assert.Equal(t, int64(1700000005), add.UpdatedAt)
	assert.Equal(t, "amo.ext.30490163_v2", add.Origin)
	assert.Equal(t, "117", add.Fields["talk_id"])

	upd := hook.Events[1].(*CRMTalkEvent)
	assert.Equal(t, "update_talk", upd.CRMEventName())
	assert.Equal(t, 116, upd.TalkID)
	assert.False(t, upd.IsInWork)
	assert.True(t, upd.IsRead, `"true" reads as true`)
}

func TestParseCRMWebhookMessage(t *testing.T) {
	t.Parallel()
	hook, err := ParseCRMWebhookBody(testkit.Fixture(t, "webhooks", "crm_message_add.form"))
	require.NoError(t, err)
	require.Len(t, hook.Events, 1)
	m := hook.Events[0].(*CRMMessageEvent)
	assert.Equal(t, "add_message", m.CRMEventName())
	assert.Equal(t, "0371a0ff-31ed-41af-9d23-c0f1504a1b2c", m.ID)
	assert.Equal(t, 116, m.TalkID)
	assert.Equal(t, "Hello World!", m.Text)
	assert.Equal(t, int64(1580116931), m.CreatedAt)
	assert.Equal(t, "Ivan Ivanov", m.AuthorName)
	assert.Equal(t, "7a389ab2-cd65-46a6-8216-06f39e12f3d8", m.AuthorID)
	assert.Equal(t, "contact", m.AuthorType)
	assert.Equal(t, "picture", m.AttachmentType)
	assert.Equal(t, 123456789, m.ElementID)
	assert.Equal(t, 1, m.ElementType)
	assert.Equal(t, "telegram", m.Origin)
}

func TestParseCRMWebhookTemplateReview(t *testing.T) {
	t.Parallel()
	hook, err := ParseCRMWebhookBody(testkit.Fixture(t, "webhooks", "crm_template_review.form"))
	require.NoError(t, err)
	require.Len(t, hook.Events, 1)
	ev := hook.Events[0].(*CRMTemplateReviewEvent)
	assert.Equal(t, CRMEventAddChatTemplateReview, ev.CRMEventName())
	assert.Equal(t, int64(6955), ev.TemplateID)
	assert.Equal(t, TemplateTypeWABA, ev.Type)
	assert.True(t, ev.IsOnReview)
	assert.Equal(t, "UTILITY", ev.WABACategory)
	assert.Equal(t, []TemplateReview{{ID: 15, SourceID: 20826950, Status: "review"}}, ev.Reviews)
	assert.Zero(t, hook.Account.ID, "no account part in the documented example")
}

func TestParseCRMWebhookUnknownKeptRaw(t *testing.T) {
	t.Parallel()
	hook, err := ParseCRMWebhookBody(testkit.Fixture(t, "webhooks", "crm_lead_status.form"))
	require.NoError(t, err)
	require.Len(t, hook.Events, 3)
	del := hook.Events[0].(*CRMUnknownEvent) // contacts sorts first
	assert.Equal(t, &CRMUnknownEvent{Entity: "contacts", Action: "delete", Fields: map[string]string{"": "10952709"}}, del)
	ld := hook.Events[1].(*CRMUnknownEvent)
	assert.Equal(t, "delete_leads", ld.CRMEventName())
	st := hook.Events[2].(*CRMUnknownEvent)
	assert.Equal(t, "status_leads", st.CRMEventName())
	assert.Equal(t, map[string]string{"id": "25399013", "name": "Lead title", "old_status_id": "7039101", "status_id": "142",
		"custom_fields[0][id]": "427183", "custom_fields[0][values][0]": "1"}, st.Fields)
	assert.Equal(t, "142", hook.Form.Get("leads[status][0][status_id]"))
}

func TestParseCRMWebhookIndexOrder(t *testing.T) {
	t.Parallel()
	hook, err := ParseCRMWebhookBody([]byte("talk[add][10][talk_id]=3&talk[add][2][talk_id]=2&talk[add][0][talk_id]=1"))
	require.NoError(t, err)
	var ids []int
	for _, ev := range hook.Events {
		ids = append(ids, ev.(*CRMTalkEvent).TalkID)
	}
	assert.Equal(t, []int{1, 2, 3}, ids, "numeric index order")

	_, err = ParseCRMWebhookBody([]byte("a=%zz"))
	assert.ErrorIs(t, err, ErrWebhookMalformed)
}

func TestCRMWebhookHandler(t *testing.T) {
	t.Parallel()
	var got []*CRMWebhook
	fail := false
	h := CRMWebhookHandler(func(ctx context.Context, hook *CRMWebhook) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the callback has no deadline")
		}
		got = append(got, hook)
		if fail {
			return errors.New("queue full")
		}
		return nil
	}, nil)
	post := func(ct string, body []byte) int {
		r := httptest.NewRequest(http.MethodPost, "/kommo/crm/token", bytes.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	form := "application/x-www-form-urlencoded"
	body := testkit.Fixture(t, "webhooks", "crm_talk_add.form")
	assert.Equal(t, 200, post(form, body))
	require.Len(t, got, 1)
	assert.Equal(t, 117, got[0].Events[0].(*CRMTalkEvent).TalkID)
	assert.Equal(t, 400, post("application/json", []byte(`{}`)))
	assert.Equal(t, 413, post(form, []byte("a="+strings.Repeat("x", MaxCRMWebhookBody))))
	fail = true
	assert.Equal(t, 500, post(form, body))

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/kommo/crm/token", nil))
	assert.Equal(t, 405, w.Code)
}
