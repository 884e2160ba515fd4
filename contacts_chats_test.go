package kommo

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContactsChatsListByContact(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/contacts/chats", rec.respond(t, 200, "contacts_chats_list.json"))

	links, resp, err := c.ContactsChats.List(t.Context(), &ContactChatListOptions{ContactID: 3102959})
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)

	req := rec.only(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/contacts/chats", req.Path)
	assert.Equal(t, url.Values{"contact_id": {"3102959"}}, req.Query)

	require.Len(t, links, 2)
	assert.Equal(t, ContactChat{ID: 26219, ChatID: "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11", ContactID: 3102959}, *links[0])
	assert.Equal(t, ContactChat{ID: 26220, ChatID: "0f0c1b8e-8a6e-4d1e-9a51-3c7f4a6c9d22", ContactID: 3102959}, *links[1])
}

func TestContactsChatsListByChat(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/contacts/chats", rec.respond(t, 200, "contacts_chats_list.json"))

	_, _, err := c.ContactsChats.List(t.Context(), &ContactChatListOptions{ChatID: "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11"})
	require.NoError(t, err)
	assert.Equal(t, url.Values{"chat_id": {"6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11"}}, rec.only(t).Query)
}

func TestContactsChatsListNoContent(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/contacts/chats", rec.respond(t, 204, ""))
	links, resp, err := c.ContactsChats.List(t.Context(), &ContactChatListOptions{ContactID: 1})
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Empty(t, links)
}

func TestContactsChatsListNeedsExactlyOneFilter(t *testing.T) {
	c, mock := newCRMTestClient(t)
	for name, opts := range map[string]*ContactChatListOptions{
		"nil":         nil,
		"neither":     {},
		"blank chat":  {ChatID: "  "},
		"both":        {ContactID: 1, ChatID: "x"},
		"negative id": {ContactID: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := c.ContactsChats.List(t.Context(), opts)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "ContactsChats.List", ve.Op)
			assert.Len(t, ve.Problems, 1)
		})
	}
	assert.Zero(t, mock.GetTotalCallCount(), "no request is sent")
}

func TestContactsChatsLink(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("POST", crmBase+"api/v4/contacts/chats", rec.respond(t, 200, "contacts_chats_link.json"))

	links, _, err := c.ContactsChats.Link(t.Context(), []*ContactChatLink{
		{ContactID: 3102959, ChatID: "6cbab3d5-c4c0-42f4-b4b4-2e3a1e7a2b11"},
		{ContactID: 3102960, ChatID: "0f0c1b8e-8a6e-4d1e-9a51-3c7f4a6c9d22", RequestID: "second"},
	})
	require.NoError(t, err)

	req := rec.only(t)
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
	c, mock := newCRMTestClient(t)

	_, _, err := c.ContactsChats.Link(t.Context(), nil)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Len(t, ve.Problems, 1)

	_, _, err = c.ContactsChats.Link(t.Context(), []*ContactChatLink{nil, {}, {ContactID: 5, ChatID: "x"}})
	require.ErrorAs(t, err, &ve)
	// every problem at once: the nil item, and both fields of the empty one
	assert.Equal(t, []string{
		"links[0]: nil link",
		"links[1].contact_id: must be a positive id, got 0",
		"links[1].chat_id: required",
	}, ve.Problems)

	many := make([]*ContactChatLink, ContactsChatsBatchLimit+1)
	for i := range many {
		many[i] = &ContactChatLink{ContactID: i + 1, ChatID: fmt.Sprint("chat-", i)}
	}
	_, _, err = c.ContactsChats.Link(t.Context(), many)
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, ve.Problems[0], "batch limit of 50")

	assert.Zero(t, mock.GetTotalCallCount())
}
