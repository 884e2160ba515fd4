package kommotest

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kommo-go/kommo"
)

// Participant is a chat participant as the server knows it.
type Participant struct {
	// ID is the amojo id.
	ID string
	// ClientID is the integration's id for the participant ("" for CRM
	// users and for write-first clients not yet bound).
	ClientID    string
	Name        string
	Avatar      string
	Phone       string
	Email       string
	ProfileLink string
}

// Chat is a snapshot of a chat.
type Chat struct {
	// ID is the amojo chat id (create-chat "id", webhook conversation.id).
	ID string
	// ScopeID is the scope the chat belongs to.
	ScopeID string
	// ConversationID is the integration's chat id ("" for a write-first
	// chat until a message binds it with conversation_ref_id).
	ConversationID string
	// SourceExternalID is the source given at creation, if any.
	SourceExternalID string
	// User is the client the chat is with.
	User Participant
	// CreatedAt is when the chat was created (server clock).
	CreatedAt time.Time
}

// Reaction is one user's reaction to a message.
type Reaction struct {
	// UserID is the amojo id of who reacted.
	UserID string
	// ClientUserID is the integration's id of who reacted, when known.
	ClientUserID string
	Emoji        string
}

// Message is a snapshot of a stored message.
type Message struct {
	// ID is the amojo message id (what delivery status URLs use).
	ID string
	// MsgID is the integration's msgid ("" for messages written in Kommo).
	MsgID string
	// ScopeID, ChatID (amojo) and ConversationID (the integration's) locate
	// the chat.
	ScopeID        string
	ChatID         string
	ConversationID string
	// Incoming is true for client → Kommo messages, false for outgoing ones
	// (imported from a manager or the bot, or written in Kommo).
	Incoming bool
	// FromKommo is true for messages created by DeliverWebhook (written by a
	// manager in Kommo), false for messages the integration sent.
	FromKommo bool
	Sender    Participant
	// Receiver is nil for incoming messages.
	Receiver *Participant
	Type     kommo.MessageType
	Text     string
	Media    string
	FileName string
	FileSize int64
	// Silent is the payload's silent flag.
	Silent bool
	// Timestamp is the message time from the payload (msec_timestamp, else
	// timestamp, else arrival).
	Timestamp time.Time
	// Edited is true once an edit_message changed the message.
	Edited bool
	// DeliveryStatus is the last delivery status set (0 = sent, else
	// kommo.DeliveryStatusDelivered, kommo.DeliveryStatusRead or
	// kommo.DeliveryStatusError) with its error code and text.
	DeliveryStatus    kommo.DeliveryStatus
	DeliveryErrorCode kommo.DeliveryErrorCode
	DeliveryError     string
	Reactions         []Reaction
	// Payload is the last payload object received for the message
	// (new_message or edit_message), for assertions on fields the snapshot
	// does not break out (reply_to, forwards, source…). nil for messages
	// from Kommo.
	Payload json.RawMessage
}

// Talk is a snapshot of a talk (a conversation in the CRM).
type Talk struct {
	ID        int
	ChatID    string
	ContactID int
	LeadID    int
	CreatedAt time.Time
	UpdatedAt time.Time
	// Closed is true once POST /api/v4/talks/{id}/close succeeded;
	// ForceClosed tells whether it was sent force_close.
	Closed      bool
	ForceClosed bool
}

// Source is a snapshot of a lead source.
type Source struct {
	ID         int
	Name       string
	PipelineID int
	ExternalID string
	Default    bool
	OriginCode string
	// Services is the services array as last sent (nil if never set).
	Services json.RawMessage
}

// ---- internal state ----

type scopeState struct {
	id, accountID      string
	connected          bool
	title              string
	hookAPIVersion     string
	timeWindowDisabled bool
	chatsByConv        map[string]*chatState
	usersByClient      map[string]*Participant
	usersByAmojo       map[string]*Participant
	msgsByMsgID        map[string]*msgState
}

type chatState struct {
	id, scopeID, conversationID string
	sourceExternalID            string
	user                        *Participant
	createdAt                   time.Time
	messages                    []*msgState
	openTalk                    *talkState
}

type msgState struct {
	id, msgID, scopeID string
	chat               *chatState
	incoming           bool
	fromKommo          bool
	sender             Participant
	receiver           *Participant
	body               wireMessage
	silent             bool
	ts                 time.Time
	edited             bool
	status, errCode    int
	errText            string
	reactions          []Reaction
	// replyTo is the message it quotes, as history shows it.
	replyTo *historyEmbedded
	payload json.RawMessage
	// resp is the new_message answer, replayed for a repeated msgid.
	resp newMessageResult
	// sent is the first new_message in canonical form, what a repeated
	// msgid is compared with.
	sent  sentMessage
	order int
}

type talkState struct {
	id                   int
	chatID               string
	contactID, leadID    int
	createdAt, updatedAt time.Time
	closed, force, read  bool
}

type linkState struct {
	id        int
	chatID    string
	contactID int
}

type sourceState struct {
	id         int
	name       string
	pipelineID int
	externalID string
	isDefault  bool
	originCode *string
	services   json.RawMessage
}

func (c *chatState) snapshot() Chat {
	return Chat{ID: c.id, ScopeID: c.scopeID, ConversationID: c.conversationID,
		SourceExternalID: c.sourceExternalID, User: *c.user, CreatedAt: c.createdAt}
}

func (m *msgState) snapshot() Message {
	out := Message{
		ID: m.id, MsgID: m.msgID, ScopeID: m.scopeID, ChatID: m.chat.id, ConversationID: m.chat.conversationID,
		Incoming: m.incoming, FromKommo: m.fromKommo, Sender: m.sender,
		Type: kommo.MessageType(m.body.Type), Text: m.body.Text, Media: m.body.Media, FileName: m.body.FileName, FileSize: m.body.FileSize,
		Silent: m.silent, Timestamp: m.ts, Edited: m.edited,
		DeliveryStatus: kommo.DeliveryStatus(m.status), DeliveryErrorCode: kommo.DeliveryErrorCode(m.errCode), DeliveryError: m.errText,
		Reactions: slices.Clone(m.reactions), Payload: slices.Clone(m.payload),
	}
	if m.receiver != nil {
		r := *m.receiver
		out.Receiver = &r
	}
	return out
}

func (t *talkState) snapshot() Talk {
	return Talk{ID: t.id, ChatID: t.chatID, ContactID: t.contactID, LeadID: t.leadID,
		CreatedAt: t.createdAt, UpdatedAt: t.updatedAt, Closed: t.closed, ForceClosed: t.force}
}

func (src *sourceState) snapshot() Source {
	out := Source{ID: src.id, Name: src.name, PipelineID: src.pipelineID, ExternalID: src.externalID,
		Default: src.isDefault, Services: slices.Clone(src.services)}
	if src.originCode != nil {
		out.OriginCode = *src.originCode
	}
	return out
}

// ---- accessors ----

// Connect marks the channel as connected to the account with the given amojo
// id, as a successful POST /v2/origin/custom/{channel_id}/connect would,
// and returns the scope id. Use it to skip the connect call in tests. An
// account the server does not know (see WithAccount and WithExtraAccounts)
// is a mistake in the test: Connect panics, saying so, rather than return
// a scope id no call could use.
func (s *Server) Connect(accountAmojoID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accounts[accountAmojoID] {
		panic(fmt.Sprintf("kommotest: Connect: the server knows no account %q (add it with WithAccount or WithExtraAccounts)", accountAmojoID))
	}
	return s.connectLocked(accountAmojoID, s.channelTitle, "v2", false).id
}

func (s *Server) connectLocked(account, title, hookVersion string, twDisabled bool) *scopeState {
	id := s.channelID + "_" + account
	sc := s.scopes[id]
	if sc == nil {
		sc = &scopeState{id: id, accountID: account,
			chatsByConv: map[string]*chatState{}, usersByClient: map[string]*Participant{},
			usersByAmojo: map[string]*Participant{}, msgsByMsgID: map[string]*msgState{}}
		s.scopes[id] = sc
	}
	sc.connected, sc.title, sc.hookAPIVersion, sc.timeWindowDisabled = true, title, hookVersion, twDisabled
	return sc
}

// IsConnected reports whether the scope is connected.
func (s *Server) IsConnected(scopeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scopes[scopeID]
	return sc != nil && sc.connected
}

// findChatLocked finds a chat by amojo id, or by conversation id within
// scopeID (any scope when scopeID is "").
func (s *Server) findChatLocked(scopeID, chat string) *chatState {
	if c := s.chats[chat]; c != nil && (scopeID == "" || c.scopeID == scopeID) {
		return c
	}
	if scopeID != "" {
		if sc := s.scopes[scopeID]; sc != nil {
			return sc.chatsByConv[chat]
		}
		return nil
	}
	for _, sc := range s.scopes {
		if c := sc.chatsByConv[chat]; c != nil {
			return c
		}
	}
	return nil
}

// Chats returns every chat, in creation order.
func (s *Server) Chats() []Chat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Chat, 0, len(s.chats))
	for _, c := range s.chats {
		out = append(out, c.snapshot())
	}
	slices.SortStableFunc(out, func(a, b Chat) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// FindChat returns the chat with the given amojo chat id or, within scopeID
// (any scope when ""), integration conversation id.
func (s *Server) FindChat(scopeID, chat string) (Chat, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findChatLocked(scopeID, chat)
	if c == nil {
		return Chat{}, false
	}
	return c.snapshot(), true
}

// Messages returns the messages of a chat, oldest first by message
// timestamp (arrival order for equal timestamps). chat is the amojo
// chat id or the integration's conversation id; scopeID may be "" to search
// every scope. It returns nil for an unknown chat.
func (s *Server) Messages(scopeID, chat string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findChatLocked(scopeID, chat)
	if c == nil {
		return nil
	}
	out := make([]Message, len(c.messages))
	for i, m := range c.messages {
		out[i] = m.snapshot()
	}
	return out
}

// AllMessages returns every stored message in the order they were stored.
func (s *Server) AllMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]*msgState, 0, len(s.msgs))
	for _, m := range s.msgs {
		all = append(all, m)
	}
	slices.SortFunc(all, func(a, b *msgState) int { return a.order - b.order })
	out := make([]Message, len(all))
	for i, m := range all {
		out[i] = m.snapshot()
	}
	return out
}

// FindMessage returns the message with the given amojo id.
func (s *Server) FindMessage(amojoID string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[amojoID]
	if m == nil {
		return Message{}, false
	}
	return m.snapshot(), true
}

// Talks returns every talk, oldest first.
func (s *Server) Talks() []Talk {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Talk, len(s.talkSeq))
	for i, t := range s.talkSeq {
		out[i] = t.snapshot()
	}
	return out
}

// TalkForChat returns the latest talk of a chat (amojo chat id or
// conversation id), open or closed.
func (s *Server) TalkForChat(chat string) (Talk, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findChatLocked("", chat)
	if c == nil {
		return Talk{}, false
	}
	for i := len(s.talkSeq) - 1; i >= 0; i-- {
		if t := s.talkSeq[i]; t.chatID == c.id {
			return t.snapshot(), true
		}
	}
	return Talk{}, false
}

// ContactForChat returns the contact a chat (amojo chat id or conversation
// id) is linked to.
func (s *Server) ContactForChat(chat string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findChatLocked("", chat)
	if c == nil {
		return 0, false
	}
	l := s.links[c.id]
	if l == nil {
		return 0, false
	}
	return l.contactID, true
}

// Sources returns every live source, oldest first.
func (s *Server) Sources() []Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Source, 0, len(s.srcOrder))
	for _, id := range s.srcOrder {
		if src := s.sources[id]; src != nil {
			out = append(out, src.snapshot())
		}
	}
	return out
}
