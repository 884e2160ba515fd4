package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"time"
)

// HistoryMaxLimit is the largest page History.List accepts, and the page
// size History.All uses by default.
const HistoryMaxLimit = 50

// HistoryOptions selects a page of a chat's history.
type HistoryOptions struct {
	// Offset is how many messages to skip.
	Offset int `url:"offset"`
	// Limit is the page size, at most HistoryMaxLimit; zero leaves it to
	// Kommo in List and means HistoryMaxLimit in All.
	Limit int `url:"limit,omitempty"`
}

// HistoryMessage is one message of a chat's history.
type HistoryMessage struct {
	// Timestamp is the unix time the message was sent.
	Timestamp int64 `json:"timestamp"`
	// MsecTimestamp is the same time in milliseconds, when given.
	MsecTimestamp int64     `json:"msec_timestamp,omitempty"`
	Sender        *ChatUser `json:"sender,omitempty"`
	// Receiver is nil when Kommo leaves it out (incoming messages).
	Receiver *ChatUser   `json:"receiver,omitempty"`
	Message  ChatMessage `json:"message"`
}

// Time returns when the message was sent, to the millisecond when Kommo
// gives msec_timestamp.
func (m *HistoryMessage) Time() time.Time {
	if m.MsecTimestamp != 0 {
		return time.UnixMilli(m.MsecTimestamp)
	}
	return time.Unix(m.Timestamp, 0)
}

// chatHistoryPage is the history response body. Its items are decoded in
// one pass (ChatUser's own UnmarshalJSON would re-scan every participant)
// and then converted.
type chatHistoryPage struct {
	Messages chatHistoryItems `json:"messages"`
}

// historyMaxBody caps a history page's body: 50 messages of a few KiB each
// fit many times over; anything longer is refused before it is decoded.
const historyMaxBody = 4 << 20

// chatHistoryItems decodes a page's messages, refusing more than max
// before allocating any (a hostile page of 16 MiB of {} would otherwise
// decode into millions of items).
type chatHistoryItems struct {
	max   int
	items []chatHistoryItem
}

// UnmarshalJSON counts the array's elements first; json.Unmarshal has
// already checked that b is valid JSON.
func (h *chatHistoryItems) UnmarshalJSON(b []byte) error {
	n, err := countJSONArray(b)
	if err != nil {
		return err
	}
	if n > h.max {
		return fmt.Errorf("%w: the page has %d messages, %d were asked for", errTooManyItems, n, h.max)
	}
	h.items = make([]chatHistoryItem, 0, n)
	return json.Unmarshal(b, &h.items)
}

var errTooManyItems = errors.New("kommo: more items than the limit")

// countJSONArray counts the top-level elements of a valid JSON array (null
// counts as empty).
func countJSONArray(b []byte) (int, error) {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return 0, nil
	}
	if len(b) < 2 || b[0] != '[' {
		return 0, errors.New("messages is not an array")
	}
	n, depth, inString, escaped, empty := 0, 0, false, false, true
	for _, c := range b[1 : len(b)-1] {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		case c == ',' && depth == 0:
			n++
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			empty = false
		}
	}
	if empty {
		return 0, nil
	}
	return n + 1, nil
}

type chatHistoryItem struct {
	Timestamp     int64           `json:"timestamp"`
	MsecTimestamp int64           `json:"msec_timestamp"`
	Sender        *chatUserWire   `json:"sender"`
	Receiver      *chatUserWire   `json:"receiver"`
	Message       chatMessageWire `json:"message"`
}

// chatUserWire is ChatUser in either documented shape.
type chatUserWire struct {
	ID       string              `json:"id"`
	ClientID string              `json:"client_id"`
	Name     string              `json:"name"`
	Avatar   string              `json:"avatar"`
	Phone    string              `json:"phone"`
	Email    string              `json:"email"`
	Profile  *ParticipantProfile `json:"profile"`
}

func (w *chatUserWire) user(dst *ChatUser) *ChatUser {
	if w == nil {
		return nil
	}
	*dst = ChatUser{ID: w.ID, ClientID: w.ClientID, Name: w.Name, Avatar: w.Avatar, Phone: w.Phone, Email: w.Email}
	if w.Profile != nil {
		if dst.Phone == "" {
			dst.Phone = w.Profile.Phone
		}
		if dst.Email == "" {
			dst.Email = w.Profile.Email
		}
	}
	return dst
}

// messages converts the page, allocating messages and users in blocks.
func (p *chatHistoryPage) messages() []*HistoryMessage {
	if len(p.Messages.items) == 0 {
		return nil
	}
	msgs := make([]HistoryMessage, len(p.Messages.items))
	users := make([]ChatUser, 2*len(p.Messages.items))
	out := make([]*HistoryMessage, len(p.Messages.items))
	for i := range p.Messages.items {
		it := &p.Messages.items[i]
		msgs[i] = HistoryMessage{
			Timestamp: it.Timestamp, MsecTimestamp: it.MsecTimestamp, Message: it.Message.message(),
			Sender: it.Sender.user(&users[2*i]), Receiver: it.Receiver.user(&users[2*i+1]),
		}
		out[i] = &msgs[i]
	}
	return out
}

// List returns one page of a chat's messages, newest first.
//
// amojoChatID is the chat's amojo id: Chat.ID from Chats.Create,
// SentMessage.ConversationID from Messages.Send, or conversation.id of a
// webhook (MessageEvent.Conversation.ID). It is not your conversation_id:
// Kommo answers a conversation_id it does not know as a chat id with 204,
// an empty page, so passing your own id silently returns nothing
// (kommotest answers 404 instead, to catch the mistake). Only chats of this
// integration can be read. A chat that does not exist or has no messages
// (204) gives an empty page, not an error.
//
// Endpoint: GET /v2/origin/custom/{scope_id}/chats/{amojo_chat_id}/history?offset=&limit=
//
//	msgs, _, err := client.History.List(ctx, scopeID, chat.ID, &kommo.HistoryOptions{Limit: 50})
//
// Kommo docs: https://www.kommo.com/developers/content/chats/chats-api-methods/
func (s *HistoryService) List(ctx context.Context, scopeID, amojoChatID string, opts *HistoryOptions) ([]*HistoryMessage, *Response, error) {
	v := validator{op: "History.List"}
	v.pathID(scopeID, "scope_id")
	v.pathID(amojoChatID, "amojo_chat_id")
	var query any
	if opts != nil {
		if opts.Offset < 0 {
			v.addf("offset: must not be negative, got %d", opts.Offset)
		}
		if opts.Limit < 0 || opts.Limit > HistoryMaxLimit {
			v.addf("limit: must be between 0 (server default) and %d, got %d", HistoryMaxLimit, opts.Limit)
		}
		query = opts
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	page := chatHistoryPage{Messages: chatHistoryItems{max: HistoryMaxLimit}}
	if opts != nil && opts.Limit > 0 {
		page.Messages.max = opts.Limit
	}
	resp, err := s.client.do(ctx, &call{
		op:      "History.List",
		scope:   scopeID,
		api:     chatAPI,
		method:  http.MethodGet,
		path:    chatScopePath(scopeID, "chats", amojoChatID, "history"),
		query:   query,
		out:     &page,
		maxBody: historyMaxBody,
	})
	if err != nil {
		return nil, resp, err
	}
	return page.messages(), resp, nil
}

// All iterates over a chat's messages, newest first, from opts.Offset on,
// fetching pages of opts.Limit (default HistoryMaxLimit) lazily as the loop
// advances. amojoChatID is the chat's amojo id, as for List (Chat.ID,
// SentMessage.ConversationID or a webhook's conversation.id; your own
// conversation_id yields nothing). It stops after a short or empty page (a
// 204 included). On a failure, including a cancelled ctx, it yields one
// (nil, err) and stops. The caller's
// opts are copied, and breaking out of the loop stops the paging.
//
// Pages are newest first, so messages that arrive during the walk shift
// older ones to later offsets: a message the previous page already yielded
// is skipped, and a page with nothing new (a server that ignores the
// offset, or more new messages than a page while paging) ends the walk with
// an error matching ErrHistoryNoProgress.
//
// Endpoint: GET /v2/origin/custom/{scope_id}/chats/{amojo_chat_id}/history (one request per page)
//
//	for msg, err := range client.History.All(ctx, scopeID, chat.ID, nil) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(msg.Message.Text)
//	}
//
// Kommo docs: https://www.kommo.com/developers/content/chats/chats-api-methods/
func (s *HistoryService) All(ctx context.Context, scopeID, amojoChatID string, opts *HistoryOptions) iter.Seq2[*HistoryMessage, error] {
	var start HistoryOptions
	if opts != nil {
		start = *opts
	}
	if start.Limit == 0 {
		start.Limit = HistoryMaxLimit
	}
	return paginate(ctx, "History.All", func() func(context.Context) ([]*HistoryMessage, bool, error) {
		page := start // per walk, so the sequence can be ranged over again
		var prev map[string]bool
		return func(ctx context.Context) ([]*HistoryMessage, bool, error) {
			msgs, _, err := s.List(ctx, scopeID, amojoChatID, &page)
			if err != nil || len(msgs) == 0 {
				return nil, false, err
			}
			offset := page.Offset
			more := len(msgs) >= page.Limit
			page.Offset += len(msgs)
			// Messages that arrive during the walk push older ones to later
			// offsets, so a page may repeat the end of the one before: skip
			// what was already yielded.
			seen := make(map[string]bool, len(msgs))
			fresh := make([]*HistoryMessage, 0, len(msgs))
			for _, m := range msgs {
				k := chatHistoryKey(m)
				if prev[k] || seen[k] {
					continue
				}
				seen[k] = true
				fresh = append(fresh, m)
			}
			if len(fresh) == 0 {
				return nil, false, fmt.Errorf("kommo: History.All: %w (offset %d repeats the page before)", ErrHistoryNoProgress, offset)
			}
			prev = seen
			return fresh, more, nil
		}
	})
}

// chatHistoryKey identifies a history item: its amojo id, or, for an item
// without one, its time, sender and content.
func chatHistoryKey(m *HistoryMessage) string {
	if m.Message.ID != "" {
		return m.Message.ID
	}
	sender := ""
	if m.Sender != nil {
		sender = m.Sender.ID
	}
	return fmt.Sprintf("\x00%d|%d|%s|%s|%s|%s", m.Timestamp, m.MsecTimestamp, sender, m.Message.Type, m.Message.Text, m.Message.Media)
}
