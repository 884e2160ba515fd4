package kommo

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// chatPathPrefix starts every Chat API path (relative to the Chat API host).
const chatPathPrefix = "v2/origin/custom/"

// chatScopePath returns "v2/origin/custom/{scopeID}" followed by the given
// segments, each escaped.
func chatScopePath(scopeID string, segments ...string) string {
	p := chatPathPrefix + url.PathEscape(scopeID)
	for _, s := range segments {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// ChatSource names the lead source (CRM Sources API external_id) a chat or
// message belongs to, for integrations with several sources (e.g. several
// phone numbers). Webhooks carry it to say which source to answer from.
type ChatSource struct {
	// ExternalID is the source's external_id: up to 40 printable ASCII
	// characters (space included).
	ExternalID string `json:"external_id"`
}

// ParticipantProfile is a chat participant's contact data; Kommo copies it
// into the contact when a new incoming lead is created.
type ParticipantProfile struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// Participant is a chat participant as the integration describes it: the
// user of Chats.Create and the sender or receiver of Messages.Send.
type Participant struct {
	// ID is the participant's id on the integration side. Required.
	ID string `json:"id"`
	// RefID is the participant's amojo id: for messages sent by a CRM user,
	// the user's amojo id; for messages from the channel bot, the bot id
	// issued at channel registration. Messages.Send sends it; Chats.Create
	// does not (Kommo's changelog removed user[ref_id] from create chat).
	RefID string `json:"ref_id,omitempty"`
	// Avatar is a publicly downloadable image URL.
	Avatar string `json:"avatar,omitempty"`
	// Name is the participant's display name. Required.
	Name        string              `json:"name"`
	Profile     *ParticipantProfile `json:"profile,omitempty"`
	ProfileLink string              `json:"profile_link,omitempty"`
}

// CreateChatRequest is the body of POST /v2/origin/custom/{scope_id}/chats.
type CreateChatRequest struct {
	// ConversationID is the chat's id on the integration side. Required.
	ConversationID string `json:"conversation_id"`
	// Source, when set, makes the first incoming message create the lead in
	// that source's pipeline.
	Source *ChatSource `json:"source,omitempty"`
	// User is the chat's client. ID and Name are required. Its RefID is
	// not sent: Kommo's Chats API changelog says "Removed the user[ref_id]
	// parameter from the Create New Chat request".
	User Participant `json:"user"`
}

// chatCreateUser is the user of a create-chat body: a Participant without
// ref_id, its fields in the same order.
type chatCreateUser struct {
	ID          string              `json:"id"`
	Avatar      string              `json:"avatar,omitempty"`
	Name        string              `json:"name"`
	Profile     *ParticipantProfile `json:"profile,omitempty"`
	ProfileLink string              `json:"profile_link,omitempty"`
}

// MarshalJSON encodes the documented body, without user.ref_id.
func (r CreateChatRequest) MarshalJSON() ([]byte, error) {
	u := r.User
	return encodeJSON(struct {
		ConversationID string         `json:"conversation_id"`
		Source         *ChatSource    `json:"source,omitempty"`
		User           chatCreateUser `json:"user"`
	}{r.ConversationID, r.Source, chatCreateUser{ID: u.ID, Avatar: u.Avatar, Name: u.Name, Profile: u.Profile, ProfileLink: u.ProfileLink}})
}

// Chat is a chat created by Chats.Create.
type Chat struct {
	// ID is the chat's amojo id: the conversation ref id used by
	// History.List and in webhooks.
	ID   string    `json:"id"`
	User *ChatUser `json:"user,omitempty"`
}

// ChatUser is a chat participant as Kommo reports it: in create-chat
// responses, history items and webhooks. Kommo fills only some fields: a
// manager usually has ID and Name; a client has ID, ClientID and, when a
// profile was passed, Phone and Email. For a chat opened with "Write first",
// the receiver's Phone is the number the manager chose. Empty values may be
// absent.
type ChatUser struct {
	// ID is the participant's amojo id.
	ID string `json:"id"`
	// ClientID is the participant's id on the integration side; absent for
	// CRM users.
	ClientID string `json:"client_id,omitempty"`
	Name     string `json:"name,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
}

// UnmarshalJSON accepts both documented shapes: phone and email at the top
// level and nested under "profile".
func (u *ChatUser) UnmarshalJSON(b []byte) error {
	var w chatUserWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	w.user(u)
	return nil
}

// Create creates a chat before its first message (for instance to link it
// to an existing contact without creating an incoming lead). It is
// idempotent on ConversationID: an existing chat's id is returned. A chat
// without messages is not shown in the account. User.RefID is not sent.
// The returned Chat.ID is the chat's amojo id, what History.List takes.
//
// Endpoint: POST /v2/origin/custom/{scope_id}/chats
//
//	chat, _, err := client.Chats.Create(ctx, scopeID, &kommo.CreateChatRequest{
//		ConversationID: "chat-1",
//		User:           kommo.Participant{ID: "user-1", Name: "Client"},
//	})
//
// Kommo docs: https://developers.kommo.com/reference/create-chat
func (s *ChatsService) Create(ctx context.Context, scopeID string, req *CreateChatRequest) (*Chat, *Response, error) {
	v := validator{op: "Chats.Create"}
	v.pathID(scopeID, "scope_id")
	if req == nil {
		v.addf("request: required")
	} else {
		v.require(req.ConversationID, "conversation_id")
		chatCheckParticipant(&v, &req.User, "user")
		chatCheckSource(&v, req.Source, "source")
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	out := new(Chat)
	resp, err := s.client.do(ctx, &call{
		op:     "Chats.Create",
		scope:  scopeID,
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatScopePath(scopeID, "chats"),
		body:   req,
		out:    out,
	})
	if err != nil {
		return nil, resp, err
	}
	return out, resp, nil
}
