package kommo

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContactsChatsList(t *testing.T) {
	t.Parallel()
	const chatA, chatB = "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11", "0f0c1b8e-8a6e-4d1e-9a51-3c7f4a6c9d22"
	for _, tc := range []struct {
		name string
		opts *ContactChatListOptions
		raw  string // the raw query as sent
	}{
		// One id keeps the plain form; several are an indexed PHP array.
		{"one contact", &ContactChatListOptions{ContactIDs: []int{3102959}}, "contact_id=3102959"},
		{"one chat", &ContactChatListOptions{ChatIDs: []string{chatA}}, "chat_id=" + chatA},
		{"several contacts", &ContactChatListOptions{ContactIDs: []int{3102959, 3102960, 7}},
			"contact_id%5B0%5D=3102959&contact_id%5B1%5D=3102960&contact_id%5B2%5D=7"},
		{"several chats", &ContactChatListOptions{ChatIDs: []string{chatA, chatB}},
			"chat_id%5B0%5D=" + chatA + "&chat_id%5B1%5D=" + chatB},
		{"chat id escaped", &ContactChatListOptions{ChatIDs: []string{"a&b=c", "d e"}},
			"chat_id%5B0%5D=a%26b%3Dc&chat_id%5B1%5D=d+e"},
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
			assert.Equal(t, tc.raw, req.RawQuery)
			assert.Empty(t, req.Body)

			require.Len(t, links, 2)
			assert.Equal(t, ContactChat{ID: 26219, ChatID: chatA, ContactID: 3102959}, *links[0])
			assert.Equal(t, ContactChat{ID: 26220, ChatID: chatB, ContactID: 3102959}, *links[1])
		})
	}
}

func TestContactsChatsListNoContent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/contacts/chats", h.reply(204))
	links, resp, err := h.client.ContactsChats.List(t.Context(), &ContactChatListOptions{ContactIDs: []int{1}})
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Empty(t, links)
	assert.Len(t, h.requests(), 1)
}

func TestContactsChatsListNeedsOneKindOfID(t *testing.T) {
	t.Parallel()
	var cases []validationCase
	for name, tc := range map[string]struct {
		opts     *ContactChatListOptions
		problems []string
	}{
		"nil":                  {nil, []string{"opts: set ContactIDs or ChatIDs"}},
		"neither":              {&ContactChatListOptions{}, []string{"opts: set ContactIDs or ChatIDs"}},
		"empty slices":         {&ContactChatListOptions{ContactIDs: []int{}, ChatIDs: []string{}}, []string{"opts: set ContactIDs or ChatIDs"}},
		"both":                 {&ContactChatListOptions{ContactIDs: []int{1}, ChatIDs: []string{"x"}}, []string{"opts: set only one of ContactIDs and ChatIDs, not both"}},
		"both, several":        {&ContactChatListOptions{ContactIDs: []int{1, 2}, ChatIDs: []string{"x", "y"}}, []string{"opts: set only one of ContactIDs and ChatIDs, not both"}},
		"blank chat":           {&ContactChatListOptions{ChatIDs: []string{"  "}}, []string{"opts.ChatIDs[0]: required"}},
		"negative id":          {&ContactChatListOptions{ContactIDs: []int{-1}}, []string{"opts.ContactIDs[0]: must be a positive id, got -1"}},
		"every bad item":       {&ContactChatListOptions{ContactIDs: []int{5, 0, -2}}, []string{"opts.ContactIDs[1]: must be a positive id, got 0", "opts.ContactIDs[2]: must be a positive id, got -2"}},
		"one blank of several": {&ContactChatListOptions{ChatIDs: []string{"a", ""}}, []string{"opts.ChatIDs[1]: required"}},
	} {
		cases = append(cases, validationCase{name: name, op: "ContactsChats.List", problems: tc.problems, call: func(ctx context.Context, c *Client) error {
			_, _, err := c.ContactsChats.List(ctx, tc.opts)
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
