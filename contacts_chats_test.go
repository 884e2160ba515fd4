package kommo

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContactsChatsList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  *ContactChatListOptions
		query url.Values
	}{
		{"by contact", &ContactChatListOptions{ContactID: 3102959}, url.Values{"contact_id": {"3102959"}}},
		{"by chat", &ContactChatListOptions{ChatID: "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11"}, url.Values{"chat_id": {"6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mux.HandleFunc("GET /api/v4/contacts/chats", h.reply(200, "crm", "contacts_chats_list.json"))

			links, resp, err := h.client.ContactsChats.List(t.Context(), tc.opts)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)

			req := h.only()
			assert.Equal(t, http.MethodGet, req.Method)
			assert.Equal(t, "/api/v4/contacts/chats", req.Path)
			assert.Equal(t, tc.query, req.Query)

			require.Len(t, links, 2)
			assert.Equal(t, ContactChat{ID: 26219, ChatID: "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11", ContactID: 3102959}, *links[0])
			assert.Equal(t, ContactChat{ID: 26220, ChatID: "0f0c1b8e-8a6e-4d1e-9a51-3c7f4a6c9d22", ContactID: 3102959}, *links[1])
		})
	}
}

func TestContactsChatsListNoContent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/contacts/chats", h.reply(204))
	links, resp, err := h.client.ContactsChats.List(t.Context(), &ContactChatListOptions{ContactID: 1})
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Empty(t, links)
	assert.Len(t, h.requests(), 1)
}

func TestContactsChatsListNeedsExactlyOneFilter(t *testing.T) {
	t.Parallel()
	var cases []validationCase
	for name, opts := range map[string]*ContactChatListOptions{
		"nil":         nil,
		"neither":     {},
		"blank chat":  {ChatID: "  "},
		"both":        {ContactID: 1, ChatID: "x"},
		"negative id": {ContactID: -1},
	} {
		cases = append(cases, validationCase{name: name, op: "ContactsChats.List", count: 1, call: func(ctx context.Context, c *Client) error {
			_, _, err := c.ContactsChats.List(ctx, opts)
			return err
		}})
	}
	runValidationCases(t, cases)
}

func TestContactsChatsLink(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/contacts/chats", h.reply(200, "crm", "contacts_chats_link.json"))

	links, _, err := h.client.ContactsChats.Link(t.Context(), []*ContactChatLink{
		{ContactID: 3102959, ChatID: "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11"},
		{ContactID: 3102960, ChatID: "0f0c1b8e-8a6e-4d1e-9a51-3c7f4a6c9d22", RequestID: "second"},
	})
	require.NoError(t, err)

	req := h.only()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v4/contacts/chats", req.Path)
	assert.Empty(t, req.Query)
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	assert.JSONEq(t, `[
		{"contact_id":3102959,"chat_id":"6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11"},
		{"contact_id":3102960,"chat_id":"0f0c1b8e-8a6e-4d1e-9a51-3c7f4a6c9d22","request_id":"second"}
	]`, string(req.Body))

	require.Len(t, links, 2)
	assert.Equal(t, ContactChat{ID: 26219, ChatID: "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11", ContactID: 3102959, RequestID: "0"}, *links[0])
	assert.Equal(t, "second", links[1].RequestID)
	assert.Equal(t, 26221, links[1].ID)
}

func TestContactsChatsLinkValidation(t *testing.T) {
	t.Parallel()
	many := make([]*ContactChatLink, ContactsChatsBatchLimit+1)
	for i := range many {
		many[i] = &ContactChatLink{ContactID: i + 1, ChatID: fmt.Sprint("chat-", i)}
	}
	link := func(links []*ContactChatLink) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error {
			_, _, err := c.ContactsChats.Link(ctx, links)
			return err
		}
	}
	runValidationCases(t, []validationCase{
		{name: "nil", op: "ContactsChats.Link", count: 1, call: link(nil)},
		// every problem at once: the nil item, and both fields of the empty one
		{name: "bad items", op: "ContactsChats.Link", call: link([]*ContactChatLink{nil, {}, {ContactID: 5, ChatID: "x"}}), problems: []string{
			"links[0]: nil link",
			"links[1].contact_id: must be a positive id, got 0",
			"links[1].chat_id: required",
		}},
		{name: "over the batch limit", op: "ContactsChats.Link", call: link(many), contains: "batch limit of 50"},
	})
}
