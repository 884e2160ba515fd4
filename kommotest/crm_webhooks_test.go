package kommotest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
)

func TestCRMWebhooksTalkEvents(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	c := e.srv.MustClient()

	var mu sync.Mutex
	var events []kommo.CRMEvent
	var accounts []kommo.CRMWebhookAccount
	hooks := httptest.NewServer(kommo.CRMWebhookHandler(func(ctx context.Context, h *kommo.CRMWebhook) error {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, h.Events...)
		accounts = append(accounts, h.Account)
		return nil
	}, nil))
	defer hooks.Close()

	sub, _, err := c.CRMWebhooks.Subscribe(t.Context(), &kommo.CRMWebhookSubscribeRequest{
		Destination: hooks.URL + "/crm/secret", Settings: []string{kommo.CRMEventAddTalk, kommo.CRMEventUpdateTalk}})
	require.NoError(t, err)
	assert.Equal(t, []string{"add_talk", "update_talk"}, sub.Settings)
	list, _, err := c.CRMWebhooks.List(t.Context(), &kommo.CRMWebhookListOptions{Destination: hooks.URL + "/crm/secret"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, sub.ID, list[0].ID)

	e.send("c1", "m1", "Hi")    // opens a talk: add_talk
	e.send("c1", "m2", "Again") // update_talk
	talk, ok := e.srv.TalkForChat("c1")
	require.True(t, ok)
	_, err = c.Talks.Close(t.Context(), talk.ID, &kommo.CloseTalkRequest{ForceClose: true}) // update_talk
	require.NoError(t, err)

	deliveries := e.srv.WaitCRMWebhooks()
	require.Len(t, deliveries, 3)
	for _, d := range deliveries {
		assert.NoError(t, d.Err)
		assert.Equal(t, 200, d.StatusCode)
	}
	assert.Equal(t, []string{"add_talk", "update_talk", "update_talk"}, []string{deliveries[0].Event, deliveries[1].Event, deliveries[2].Event})

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 3)
	add := events[0].(*kommo.CRMTalkEvent)
	assert.Equal(t, "add_talk", add.CRMEventName())
	assert.Equal(t, talk.ID, add.TalkID, "the talk id of the chat, without TalkForChat")
	assert.Equal(t, talk.ChatID, add.ChatID)
	assert.Equal(t, talk.ContactID, add.ContactID)
	assert.True(t, add.IsInWork)
	closed := events[2].(*kommo.CRMTalkEvent)
	assert.False(t, closed.IsInWork)
	assert.Equal(t, kommo.CRMWebhookAccount{ID: e.srv.AccountID(), Subdomain: "kommotest", Self: "https://kommotest.kommo.com"}, accounts[0])

	// Unsubscribed: nothing more is sent.
	_, err = c.CRMWebhooks.Unsubscribe(t.Context(), hooks.URL+"/crm/secret")
	require.NoError(t, err)
	e.send("c2", "m3", "Hi")
	assert.Len(t, e.srv.WaitCRMWebhooks(), 3)
	_, err = c.CRMWebhooks.Unsubscribe(t.Context(), hooks.URL+"/crm/secret")
	assert.ErrorIs(t, err, kommo.ErrNotFound)
}

func TestCRMWebhooksTemplateReview(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	c := e.srv.MustClient()
	var mu sync.Mutex
	var got []kommo.CRMEvent
	hooks := httptest.NewServer(kommo.CRMWebhookHandler(func(ctx context.Context, h *kommo.CRMWebhook) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, h.Events...)
		return nil
	}, nil))
	defer hooks.Close()
	_, _, err := c.CRMWebhooks.Subscribe(t.Context(), &kommo.CRMWebhookSubscribeRequest{Destination: hooks.URL, Settings: []string{kommo.CRMEventAddChatTemplateReview}})
	require.NoError(t, err)

	tpls, _, err := c.Templates.Create(t.Context(), []*kommo.Template{{Name: "W", Content: "Hi", Type: kommo.TemplateTypeWABA, WABALanguage: "en"}})
	require.NoError(t, err)
	_, _, err = c.Templates.SendForReview(t.Context(), tpls[0].ID)
	require.NoError(t, err)
	require.Len(t, e.srv.WaitCRMWebhooks(), 1)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	ev := got[0].(*kommo.CRMTemplateReviewEvent)
	assert.Equal(t, tpls[0].ID, ev.TemplateID)
	assert.True(t, ev.IsOnReview)
	require.Len(t, ev.Reviews, 1)
	assert.Equal(t, "review", ev.Reviews[0].Status)
}

func TestCRMWebhooksEndpointErrors(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	resp, _ := e.crm(http.MethodPost, "/api/v4/webhooks", map[string]any{"destination": "not a url", "settings": []string{"add_talk"}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = e.crm(http.MethodPost, "/api/v4/webhooks", map[string]any{"destination": "https://a.example/", "settings": []string{}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, data := e.crm(http.MethodPost, "/api/v4/webhooks", map[string]any{"destination": "https://a.example/", "settings": []string{"add_talk"}})
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	first := decode(t, data)["id"]
	resp, data = e.crm(http.MethodPost, "/api/v4/webhooks", map[string]any{"destination": "https://a.example/", "settings": []string{"update_talk"}})
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	again := decode(t, data)
	assert.Equal(t, first, again["id"], "the same destination is updated")
	assert.Equal(t, []any{"update_talk"}, again["settings"])
}
