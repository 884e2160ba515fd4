package kommo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// The examples below run against kommotest, the SDK's in-memory fake of
// Kommo, so their output is checked by go test. In production, replace
// srv.MustClient() with kommo.NewClient and your own credentials.

func ExampleNewClient() {
	srv := kommotest.NewServer()
	defer srv.Close()

	// One client for both APIs: the channel (Chat API) and a token (CRM).
	client, err := kommo.NewClient(
		kommo.WithChannel(srv.ChannelID(), srv.ChannelSecret()),
		kommo.WithAccessToken(srv.AccessToken()),
		// Production code uses kommo.WithBaseDomain("example.kommo.com")
		// instead of these two.
		kommo.WithChatBaseURL(srv.URL()+"/"),
		kommo.WithCRMBaseURL(srv.URL()+"/"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	amojoID, _, err := client.Account.AmojoID(context.Background())
	fmt.Println(amojoID, err)

	// Every invalid option is reported at once.
	_, err = kommo.NewClient(
		kommo.WithChannel(srv.ChannelID(), ""),
		kommo.WithBaseDomain("https://example.kommo.com/api/v4"),
	)
	fmt.Println(err)
	// Output:
	// 52fd2a28-d2eb-4bd8-b862-a67934927b38 <nil>
	// kommo: invalid options: WithChannel: empty channel secret
	// WithBaseDomain: "https://example.kommo.com/api/v4" is not an account host: it has a path (use WithCRMBaseURL for a full URL)
}

func ExampleMessagesService_Send() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	scopeID := srv.Connect(srv.AccountAmojoID())

	// An incoming message from the client; the first one creates the chat.
	sent, _, err := client.Messages.Send(context.Background(), scopeID, &kommo.SendMessageRequest{
		MsgID:          "msg-1", // optional: Send generates one when empty
		ConversationID: "chat-1",
		Sender:         &kommo.Participant{ID: "client-1", Name: "Alice"},
		Message:        kommo.TextMessage("Hi! Is my order ready?"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("msgid:", sent.MsgID)
	fmt.Println("amojo id:", sent.ID)
	fmt.Println("chat:", sent.ConversationID)
	fmt.Println("sender:", sent.SenderID)
	// Output:
	// msgid: msg-1
	// amojo id: 16106f1f-6095-4990-bdae-29ce026451cd
	// chat: 2a08a5a5-2dee-4547-8e39-7bacfb8d0216
	// sender: 55c985ca-476f-464c-995d-f248cc8817c7
}

// Importing old messages: Silent keeps them from creating an incoming lead
// or notifications, and a message of the channel bot (Sender.RefID is the
// bot id issued at registration, Receiver is the client) is not sent back
// as a webhook.
func ExampleMessagesService_Send_import() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	scopeID := srv.Connect(srv.AccountAmojoID())

	_, _, err := client.Messages.Send(context.Background(), scopeID, &kommo.SendMessageRequest{
		Time:           time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC),
		MsgID:          "import-1",
		ConversationID: "chat-1",
		Sender:         &kommo.Participant{ID: "bot", RefID: srv.BotID(), Name: "Shop bot"},
		Receiver:       &kommo.Participant{ID: "client-1", Name: "Alice"},
		Message:        kommo.TextMessage("Your order has shipped"),
		Silent:         true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	m := srv.Messages(scopeID, "chat-1")[0]
	fmt.Println(m.Text, "| incoming:", m.Incoming, "| silent:", m.Silent, "|", m.Timestamp.UTC().Format(time.RFC3339))
	fmt.Println("talks opened:", len(srv.Talks()))
	// Output:
	// Your order has shipped | incoming: false | silent: true | 2024-03-01T09:30:00Z
	// talks opened: 0
}

func ExampleHistoryService_All() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	start := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	var chatRefID string // the chat's amojo id
	for i, text := range []string{"one", "two", "three"} {
		sent, _, err := client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
			Time:           start.Add(time.Duration(i) * time.Minute),
			ConversationID: "chat-1",
			Sender:         &kommo.Participant{ID: "client-1", Name: "Alice"},
			Message:        kommo.TextMessage(text),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		chatRefID = sent.ConversationID
	}

	// Pages of two messages are fetched as the loop advances.
	for msg, err := range client.History.All(ctx, scopeID, chatRefID, &kommo.HistoryOptions{Limit: 2}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(msg.Time().Format("15:04"), msg.Sender.Name, msg.Message.Text)
	}
	pages := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet {
			pages++
		}
	}
	fmt.Println("pages fetched:", pages)
	// Output:
	// 09:02 Alice three
	// 09:01 Alice two
	// 09:00 Alice one
	// pages fetched: 2
}

func ExampleChannelsService_Connect() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()

	amojoID, _, err := client.Account.AmojoID(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, _, err := client.Channels.Connect(ctx, &kommo.ConnectRequest{AccountID: amojoID, Title: "My shop"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(conn.ScopeID)
	fmt.Println(conn.ScopeID == kommo.ScopeID(client.ChannelID(), amojoID))
	fmt.Println(conn.Title, conn.HookAPIVersion)
	// Output:
	// f62a0162-46a7-430e-b06c-0ef798d76a21_52fd2a28-d2eb-4bd8-b862-a67934927b38
	// true
	// My shop v2
}

func ExampleChatsService_Create() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	req := &kommo.CreateChatRequest{
		ConversationID: "chat-1",
		User: kommo.Participant{
			ID:      "client-1",
			Name:    "Alice",
			Profile: &kommo.ParticipantProfile{Phone: "+15550001111"},
		},
	}
	chat, _, err := client.Chats.Create(ctx, scopeID, req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(chat.ID)
	fmt.Println(chat.User.ClientID, chat.User.Name, chat.User.Phone)

	// Create is idempotent on ConversationID.
	again, _, err := client.Chats.Create(ctx, scopeID, req)
	fmt.Println(err == nil && again.ID == chat.ID)
	// Output:
	// 2a08a5a5-2dee-4547-8e39-7bacfb8d0216
	// client-1 Alice +15550001111
	// true
}

func ExampleMessagesService_UpdateDeliveryStatus() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())
	_, _, err := client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
		ConversationID: "chat-1",
		Sender:         &kommo.Participant{ID: "client-1", Name: "Alice"},
		Message:        kommo.TextMessage("Hi!"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// A manager answers in Kommo; the webhook carries the amojo message id.
	hook, err := srv.NewWebhookRequest(ctx, "https://integration.example/kommo/:scope_id",
		kommotest.ManagerMessage("chat-1", "Hello Alice!"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ev, err := kommo.ParseWebhook(hook, srv.ChannelSecret())
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := ev.(*kommo.MessageEvent)

	// Once the messenger delivered it, and once the client read it:
	for _, status := range []kommo.DeliveryStatus{kommo.DeliveryStatusDelivered, kommo.DeliveryStatusRead} {
		_, err := client.Messages.UpdateDeliveryStatus(ctx, scopeID, msg.Message.ID,
			&kommo.DeliveryStatusRequest{Status: status})
		if err != nil {
			fmt.Println(err)
			return
		}
		stored, _ := srv.FindMessage(msg.Message.ID)
		fmt.Printf("%q status %d\n", stored.Text, stored.DeliveryStatus)
	}
	// Output:
	// "Hello Alice!" status 1
	// "Hello Alice!" status 2
}

func ExampleTalksService_Close() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	// A client's message opens a talk in the CRM.
	_, _, err := client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
		ConversationID: "chat-1",
		Sender:         &kommo.Participant{ID: "client-1", Name: "Alice"},
		Message:        kommo.TextMessage("Hi!"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	t, _ := srv.TalkForChat("chat-1")
	talk, _, err := client.Talks.Get(ctx, t.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("talk", talk.ID, "in work:", talk.IsInWork)

	_, err = client.Talks.Close(ctx, talk.ID, &kommo.CloseTalkRequest{ForceClose: true})
	fmt.Println("closed:", err)

	// Closing it again is not a failure worth retrying.
	_, err = client.Talks.Close(ctx, talk.ID, &kommo.CloseTalkRequest{ForceClose: true})
	fmt.Println("already closed:", errors.Is(err, kommo.ErrTalkClosed))
	// Output:
	// talk 1001 in work: true
	// closed: <nil>
	// already closed: true
}

func ExampleAccountService_AmojoID() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()

	// The amojo id (not the CRM account id) names the account in the Chat
	// API; it is what Channels.Connect needs.
	amojoID, _, err := client.Account.AmojoID(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(amojoID)
	fmt.Println(kommo.ScopeID(client.ChannelID(), amojoID))
	// Output:
	// 52fd2a28-d2eb-4bd8-b862-a67934927b38
	// f62a0162-46a7-430e-b06c-0ef798d76a21_52fd2a28-d2eb-4bd8-b862-a67934927b38
}

func ExampleContactsChatsService_Link() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	// Link a new chat to an existing contact before its first message, so
	// no incoming lead is created for it.
	chat, _, err := client.Chats.Create(ctx, scopeID, &kommo.CreateChatRequest{
		ConversationID: "chat-1",
		User:           kommo.Participant{ID: "client-1", Name: "Alice"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	links, _, err := client.ContactsChats.Link(ctx, []*kommo.ContactChatLink{
		{ContactID: 3102959, ChatID: chat.ID, RequestID: "alice"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(links[0].RequestID, links[0].ContactID, links[0].ChatID == chat.ID)

	found, _, err := client.ContactsChats.List(ctx, &kommo.ContactChatListOptions{ChatIDs: []string{chat.ID}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(found), found[0].ContactID)
	// Output:
	// alice 3102959 true
	// 1 3102959
}

func ExampleAPIError() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()

	_, _, err := client.Talks.Get(context.Background(), 424242)

	// errors.Is for the kind of failure, errors.As for the details.
	fmt.Println(errors.Is(err, kommo.ErrNotFound))
	var apiErr *kommo.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Method, apiErr.Detail)
	}
	// Output:
	// true
	// 404 GET talk not found
}

func ExampleValidationError() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()

	// A send without a chat or sender, of a picture whose URL is relative,
	// is refused before any request.
	_, _, err := client.Messages.Send(context.Background(), srv.ScopeID(), &kommo.SendMessageRequest{
		Message: kommo.PictureMessage("photo.png", "", 0),
	})
	fmt.Println(errors.Is(err, kommo.ErrInvalidRequest))
	var verr *kommo.ValidationError
	if errors.As(err, &verr) {
		fmt.Println(verr.Op)
		for _, p := range verr.Problems {
			fmt.Println("-", p)
		}
	}
	fmt.Println("requests sent:", len(srv.Requests()))
	// Output:
	// true
	// Messages.Send
	// - payload.conversation_id: required
	// - payload.sender: required
	// - payload.message.media: must be an absolute http or https URL that Kommo can download
	// requests sent: 0
}

// Signing a Chat API request by hand, with the typing example of the
// amoCRM Chat API documentation. Clients sign every request themselves;
// a Signer is for proxies, servers and tests.
func ExampleSigner_Sign() {
	const secret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	signer := kommo.NewSigner(secret)

	body := []byte(`{"conversation_id":"my_int-d5a421f7f218","sender":{"id":"my_int-1376265f-86df-4c49-a0c3-a4816df41af8"}}`)
	req, err := http.NewRequest(http.MethodPost, "https://amojo.kommo.com/v2/origin/custom/"+
		"344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81/typing", bytes.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	// A Date already on the request is signed as it is (else Sign sets now).
	req.Header.Set("Date", "Thu, 16 Dec 2021 16:01:21 +0000")
	if err := signer.Sign(req, body); err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range []string{"Date", "Content-Type", "Content-MD5", "X-Signature"} {
		fmt.Printf("%s: %s\n", h, req.Header.Get(h))
	}
	// Output:
	// Date: Thu, 16 Dec 2021 16:01:21 +0000
	// Content-Type: application/json
	// Content-MD5: 255a22566d68be207fa36804e78a523a
	// X-Signature: e8263b1daf2b20396c02db6c8c846f95cc0f9540
}

// exampleTokenStore is an in-memory kommo.TokenStore. Real stores must be
// durable: Kommo's refresh tokens are single use.
type exampleTokenStore struct {
	mu    sync.Mutex
	tok   *oauth2.Token
	saves int
}

func (s *exampleTokenStore) Load(context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return nil, errors.New("no token stored")
	}
	cp := *s.tok
	return &cp, nil
}

func (s *exampleTokenStore) Save(_ context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *tok
	s.tok = &cp
	s.saves++
	return nil
}

func ExampleNewTokenSource() {
	srv := kommotest.NewServer()
	defer srv.Close()
	ctx := context.Background()

	cfg := &kommo.OAuthConfig{
		ClientID:     srv.OAuthClientID(),
		ClientSecret: srv.OAuthClientSecret(),
		RedirectURL:  srv.OAuthRedirectURI(),
		BaseDomain:   srv.AccountDomain(),
		TokenURL:     srv.TokenURL(), // only because the account is fake
	}

	// The stored pair's access token has expired.
	access, refresh := srv.IssueTokens(0)
	store := &exampleTokenStore{tok: &oauth2.Token{
		AccessToken: access, RefreshToken: refresh, Expiry: srv.Now().Add(-time.Second),
	}}

	ts, err := kommo.NewTokenSource(ctx, cfg, store)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := srv.MustClient(kommo.WithTokenSource(ts))

	// The first CRM call refreshes the token and saves the new pair first.
	amojoID, _, err := client.Account.AmojoID(ctx)
	fmt.Println(amojoID, err)
	fmt.Println("saves:", store.saves)
	fmt.Println("new access token:", store.tok.AccessToken != access)
	fmt.Println("new refresh token:", store.tok.RefreshToken != refresh)
	fmt.Println("valid for:", store.tok.Expiry.Sub(srv.Now()).Round(time.Hour))

	// The next call uses the saved token without refreshing.
	_, _, err = client.Account.AmojoID(ctx)
	fmt.Println(err, "saves:", store.saves)
	// Output:
	// 52fd2a28-d2eb-4bd8-b862-a67934927b38 <nil>
	// saves: 1
	// new access token: true
	// new refresh token: true
	// valid for: 24h0m0s
	// <nil> saves: 1
}

func ExampleCollect() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	chat, _, err := client.Chats.Create(ctx, scopeID, &kommo.CreateChatRequest{
		ConversationID: "chat-1",
		User:           kommo.Participant{ID: "client-1", Name: "Alice"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	start := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, text := range []string{"first", "second"} {
		_, _, err := client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
			Time:           start.Add(time.Duration(i) * time.Second),
			ConversationID: "chat-1",
			Sender:         &kommo.Participant{ID: "client-1", Name: "Alice"},
			Message:        kommo.TextMessage(text),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}

	// Collect drains the iterator into a slice (newest first here).
	msgs, err := kommo.Collect(client.History.All(ctx, scopeID, chat.ID, nil))
	fmt.Println(len(msgs), err)
	for _, m := range msgs {
		fmt.Println(m.Message.Text)
	}
	// Output:
	// 2 <nil>
	// second
	// first
}
