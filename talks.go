package kommo

import (
	"context"
	"errors"
	"net/http"
	"strconv"
)

// TalkEntityType is the kind of entity a talk is conducted on.
type TalkEntityType string

// Entity types of a talk.
const (
	TalkEntityLead     TalkEntityType = "lead"
	TalkEntityCustomer TalkEntityType = "customer"
)

// Talk is a conversation in the CRM (GET /api/v4/talks/{id}). Times are
// Unix seconds. Fields Kommo documents as nullable are pointers.
type Talk struct {
	// ID is the talk id ("talk_id").
	ID int `json:"talk_id"`
	// CreatedAt and UpdatedAt are Unix seconds.
	CreatedAt int64 `json:"created_at"`
	UpdatedAt int64 `json:"updated_at"`
	// Rate is the client's rating, set by the NPS bot.
	Rate int `json:"rate"`
	// ContactID is the contact the talk belongs to.
	ContactID int `json:"contact_id"`
	// ChatID is the amojo chat id of the talk.
	ChatID string `json:"chat_id"`
	// EntityID and EntityType name the lead or customer the talk is
	// conducted on; nil when there is none.
	EntityID   *int            `json:"entity_id"`
	EntityType *TalkEntityType `json:"entity_type"`
	// IsInWork reports whether the talk is open.
	IsInWork bool `json:"is_in_work"`
	// IsRead reports whether the talk has been read.
	IsRead bool `json:"is_read"`
	// Origin is the source type the talk came from, e.g. "telegram".
	Origin string `json:"origin"`
	// MissedAt is when the talk was missed (not answered in time), in Unix
	// seconds; nil when it was not.
	MissedAt *int64 `json:"missed_at"`
	// AccountID is the CRM account id.
	AccountID int `json:"account_id"`
	// Links holds _links.self.
	Links *Links `json:"_links,omitempty"`
	// Embedded holds the talk's contact, lead and customer (at most one
	// each).
	Embedded *TalkEmbedded `json:"_embedded,omitempty"`
}

// TalkEmbedded is the "_embedded" part of a Talk.
type TalkEmbedded struct {
	Contacts  []*TalkEntityRef `json:"contacts"`
	Leads     []*TalkEntityRef `json:"leads"`
	Customers []*TalkEntityRef `json:"customers"`
}

// TalkEntityRef references an entity embedded in a Talk.
type TalkEntityRef struct {
	ID    int    `json:"id"`
	Links *Links `json:"_links,omitempty"`
}

// CloseTalkRequest are the options of Talks.Close.
type CloseTalkRequest struct {
	// ForceClose closes the talk without launching the NPS bot. Without it
	// Kommo may launch the bot (when enabled and available on the plan)
	// instead of closing the talk at once.
	ForceClose bool `json:"force_close"`
}

// Get returns a talk.
//
// GET /api/v4/talks/{id}
//
//	talk, _, err := client.Talks.Get(ctx, 117)
//
// Kommo docs: https://kommo.com/developers/content/api_v4/conversations
func (s *TalksService) Get(ctx context.Context, id int) (*Talk, *Response, error) {
	v := validator{op: "Talks.Get"}
	crmPositive(&v, id, "id")
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	t := new(Talk)
	resp, err := s.client.do(ctx, &call{op: "Talks.Get", api: crmAPI, method: http.MethodGet, path: "api/v4/talks/" + strconv.Itoa(id), out: t})
	if err != nil {
		return nil, resp, err
	}
	return t, resp, nil
}

// Close closes a talk (or launches the NPS bot; see CloseTalkRequest).
// Kommo answers 202 with no body. A talk that is already closed or being
// closed fails with an error matching ErrTalkClosed; an unpaid account with
// one matching ErrPaymentRequired. opts may be nil.
//
// POST /api/v4/talks/{id}/close
//
//	_, err := client.Talks.Close(ctx, 117, &kommo.CloseTalkRequest{ForceClose: true})
//	if errors.Is(err, kommo.ErrTalkClosed) { /* nothing to do */ }
//
// Kommo docs: https://developers.kommo.com/reference/close-conversation
func (s *TalksService) Close(ctx context.Context, id int, opts *CloseTalkRequest) (*Response, error) {
	v := validator{op: "Talks.Close"}
	crmPositive(&v, id, "id")
	if err := v.err(); err != nil {
		return nil, err
	}
	body := CloseTalkRequest{}
	if opts != nil {
		body = *opts
	}
	resp, err := s.client.do(ctx, &call{op: "Talks.Close", api: crmAPI, method: http.MethodPost, path: "api/v4/talks/" + strconv.Itoa(id) + "/close", body: body})
	var ae *APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusUnprocessableEntity {
		ae.talkClosed = true // Kommo answers 422 for a talk that is already closed
	}
	return resp, err
}

// crmPositive records a problem when an entity id is not positive.
func crmPositive(v *validator, id int, field string) {
	if id <= 0 {
		v.addf("%s: must be a positive id, got %d", field, id)
	}
}
