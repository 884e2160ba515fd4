package kommo

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ContactsChatsBatchLimit is the most links ContactsChats.Link sends in one
// request (Kommo recommends at most 50 items per write).
const ContactsChatsBatchLimit = 50

// ContactChat is a link between a CRM contact and an amojo chat. A chat is
// linked to exactly one contact; a contact may have many chats. The link ID
// may change over time.
type ContactChat struct {
	// ID is the link id.
	ID int `json:"id"`
	// ChatID is the amojo chat id (the id returned by Chats.Create).
	ChatID string `json:"chat_id"`
	// ContactID is the CRM contact id.
	ContactID int `json:"contact_id"`
	// RequestID echoes ContactChatLink.RequestID (or the item's index when
	// none was given); only set in ContactsChats.Link results.
	RequestID string `json:"request_id,omitempty"`
}

// ContactChatLink asks ContactsChats.Link to link a chat to a contact.
type ContactChatLink struct {
	// ContactID is the CRM contact id (required).
	ContactID int `json:"contact_id"`
	// ChatID is the amojo chat id (required).
	ChatID string `json:"chat_id"`
	// RequestID is echoed in the result so it can be matched to this item
	// (optional).
	RequestID string `json:"request_id,omitempty"`
}

// ContactChatListOptions selects the links ContactsChats.List returns: set
// exactly one of ContactID and ChatID.
type ContactChatListOptions struct {
	// ContactID lists the chats of a contact.
	ContactID int
	// ChatID finds the contact of a chat (the Unsorted contact when the
	// chat is still in Unsorted).
	ChatID string
}

// List returns the chat links of a contact or the contact link of a chat.
// Exactly one of opts.ContactID and opts.ChatID must be set; asking for
// both or neither fails before any request with a *ValidationError. A 204
// (nothing found) is an empty result.
//
// GET /api/v4/contacts/chats?contact_id={id} or ?chat_id={id}
//
//	links, _, err := client.ContactsChats.List(ctx, &kommo.ContactChatListOptions{ChatID: chatID})
//
// Kommo API docs: https://developers.kommo.com/reference/link-chat-contact
//
// Kommo docs: https://developers.kommo.com/reference/link-chat-contact
func (s *ContactsChatsService) List(ctx context.Context, opts *ContactChatListOptions) ([]*ContactChat, *Response, error) {
	v := validator{op: "ContactsChats.List"}
	q := url.Values{}
	switch {
	case opts == nil || (opts.ContactID == 0 && strings.TrimSpace(opts.ChatID) == ""):
		v.addf("opts: set exactly one of ContactID and ChatID")
	case opts.ContactID != 0 && strings.TrimSpace(opts.ChatID) != "":
		v.addf("opts: set only one of ContactID and ChatID, not both")
	case opts.ContactID != 0:
		crmPositive(&v, opts.ContactID, "opts.ContactID")
		q.Set("contact_id", strconv.Itoa(opts.ContactID))
	default:
		q.Set("chat_id", opts.ChatID)
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	items, _, resp, err := crmListPage[*ContactChat](ctx, s.client, "api/v4/contacts/chats", q, "chats")
	if err != nil {
		return nil, resp, err
	}
	return items, resp, nil
}

// Link links chats to contacts in one batch of at most
// ContactsChatsBatchLimit items and returns the links, each with the
// request_id of the item it answers. Every item needs ContactID and ChatID;
// all problems are reported at once before any request.
//
// POST /api/v4/contacts/chats
//
//	links, _, err := client.ContactsChats.Link(ctx, []*kommo.ContactChatLink{
//		{ContactID: 3102959, ChatID: chatID},
//	})
//
// Kommo API docs: https://developers.kommo.com/reference/link-chat-contact
//
// Kommo docs: https://developers.kommo.com/reference/link-chat-contact
func (s *ContactsChatsService) Link(ctx context.Context, links []*ContactChatLink) ([]*ContactChat, *Response, error) {
	v := validator{op: "ContactsChats.Link"}
	switch {
	case len(links) == 0:
		v.addf("links: at least one link is required")
	case len(links) > ContactsChatsBatchLimit:
		v.addf("links: %d items exceed the batch limit of %d", len(links), ContactsChatsBatchLimit)
	}
	for i, l := range links {
		field := "links[" + strconv.Itoa(i) + "]"
		if l == nil {
			v.addf("%s: nil link", field)
			continue
		}
		crmPositive(&v, l.ContactID, field+".contact_id")
		v.require(l.ChatID, field+".chat_id")
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	var page crmHALPage
	resp, err := s.client.do(ctx, &call{api: crmAPI, method: http.MethodPost, path: "api/v4/contacts/chats", body: links, out: &page})
	if err != nil {
		return nil, resp, err
	}
	items, err := crmEmbedded[*ContactChat](page, "chats")
	if err != nil {
		return nil, resp, crmDecodeErr(resp, err)
	}
	return items, resp, nil
}
