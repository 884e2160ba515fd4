// Command quickstart walks through one conversation with the kommo SDK,
// printing each step: it connects a channel, creates a chat, links it to a
// contact, sends a client message, reads the talk, receives a manager's reply
// through a signed webhook, marks it delivered and read, pages the history
// and closes the talk.
//
// By default it runs against an embedded kommotest server, so it needs no
// account and no network:
//
//	go run ./examples/quickstart
//
// Set KOMMO_CHANNEL_ID to run it against a real Kommo account instead:
//
//	KOMMO_CHANNEL_ID        channel id from the channel registration (turns real mode on)
//	KOMMO_CHANNEL_SECRET    channel secret from the registration
//	KOMMO_BASE_DOMAIN       account domain, e.g. example.kommo.com
//	KOMMO_ACCESS_TOKEN      long-lived token of the account's private integration
//	KOMMO_ACCOUNT_AMOJO_ID  optional; fetched with Account.AmojoID when unset
//	KOMMO_CONTACT_ID        optional; CRM contact to link the chat to (step skipped when unset)
//	KOMMO_TALK_ID           optional; the chat's talk to read and close (steps skipped when unset:
//	                        the Chat API does not return talk ids, see the talk in Kommo)
//	KOMMO_WEBHOOK_ADDR      optional; where to listen for the manager's reply, e.g. ":8080"; the
//	                        channel's webhook URL must reach it as https://host/kommo/:scope_id
//
// In real mode the client message creates an incoming lead in Unsorted; use
// a test account.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// config says which account to use. An empty channelID means embedded mode.
type config struct {
	channelID, channelSecret string
	baseDomain, accessToken  string
	accountAmojoID           string
	contactID, talkID        int
	webhookAddr              string
	replyTimeout             time.Duration

	// server is the embedded fake to use in embedded mode; run starts one
	// when it is nil (tests pass their own to inspect it afterwards).
	server *kommotest.Server
}

// The chat this example creates. Chats.Create is idempotent on the
// conversation id, so running the example twice reuses the chat.
const (
	conversationID = "quickstart-chat-1"
	demoContactID  = 3102959 // the contact linked in embedded mode
)

func main() {
	replyTimeout := flag.Duration("reply-timeout", 2*time.Minute, "real mode: how long to wait for a manager's reply")
	flag.Parse()
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(2)
	}
	cfg.replyTimeout = *replyTimeout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		// An *APIError carries what Kommo answered; quote its request id
		// when asking Kommo's support about a failure.
		var apiErr *kommo.APIError
		if errors.As(err, &apiErr) && apiErr.RequestID != "" {
			fmt.Fprintln(os.Stderr, "quickstart: request id:", apiErr.RequestID)
		}
		os.Exit(1)
	}
}

func configFromEnv() (config, error) {
	cfg := config{
		channelID:      os.Getenv("KOMMO_CHANNEL_ID"),
		channelSecret:  os.Getenv("KOMMO_CHANNEL_SECRET"),
		baseDomain:     os.Getenv("KOMMO_BASE_DOMAIN"),
		accessToken:    os.Getenv("KOMMO_ACCESS_TOKEN"),
		accountAmojoID: os.Getenv("KOMMO_ACCOUNT_AMOJO_ID"),
		webhookAddr:    os.Getenv("KOMMO_WEBHOOK_ADDR"),
	}
	if cfg.channelID != "" {
		var missing []string
		for _, v := range []struct{ name, value string }{
			{"KOMMO_CHANNEL_SECRET", cfg.channelSecret},
			{"KOMMO_BASE_DOMAIN", cfg.baseDomain},
			{"KOMMO_ACCESS_TOKEN", cfg.accessToken},
		} {
			if v.value == "" {
				missing = append(missing, v.name)
			}
		}
		if len(missing) > 0 {
			return cfg, fmt.Errorf("real mode (KOMMO_CHANNEL_ID is set) also needs %s", strings.Join(missing, ", "))
		}
	}
	var err error
	if cfg.contactID, err = envInt("KOMMO_CONTACT_ID"); err != nil {
		return cfg, err
	}
	if cfg.talkID, err = envInt("KOMMO_TALK_ID"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// envInt reads an optional positive number (0 when unset).
func envInt(name string) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive number", name, v)
	}
	return n, nil
}

// run is the whole example; main only reads the configuration.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	srv := cfg.server
	if cfg.channelID == "" && srv == nil {
		srv = kommotest.NewServer()
		defer srv.Close()
	}
	client, secret, err := newClient(cfg, srv, stdout)
	if err != nil {
		return err
	}

	// The account's amojo id (its id in the chat service, not the CRM id).
	amojoID := cfg.accountAmojoID
	if amojoID == "" {
		if amojoID, _, err = client.Account.AmojoID(ctx); err != nil {
			return fmt.Errorf("get account amojo id: %w", err)
		}
	}

	// 1. Connect the channel to the account. Do it again after every
	// (re)installation of the integration: uninstalling disconnects it.
	conn, _, err := client.Channels.Connect(ctx, &kommo.ConnectRequest{AccountID: amojoID, Title: "Quickstart"})
	if err != nil {
		return fmt.Errorf("connect channel: %w", err)
	}
	scope := conn.ScopeID // addresses every Chat API call for this account
	fmt.Fprintf(stdout, "1. connected channel: scope %s\n", scope)

	// 2. Create the chat with its client.
	alice := kommo.Participant{
		ID:      "quickstart-client-1", // your id of the client
		Name:    "Alice",
		Profile: &kommo.ParticipantProfile{Phone: "+15550001111"},
	}
	chat, _, err := client.Chats.Create(ctx, scope, &kommo.CreateChatRequest{ConversationID: conversationID, User: alice})
	if err != nil {
		return fmt.Errorf("create chat: %w", err)
	}
	fmt.Fprintf(stdout, "2. created chat %s: amojo id %s\n", conversationID, chat.ID)

	// 3. Link the chat to an existing contact, so the client's messages go
	// to that contact instead of a new one.
	contactID := cfg.contactID
	if srv != nil {
		contactID = demoContactID
	}
	if contactID == 0 {
		fmt.Fprintln(stdout, "3. skipped linking the chat to a contact: set KOMMO_CONTACT_ID")
	} else {
		links, _, err := client.ContactsChats.Link(ctx, []*kommo.ContactChatLink{{ContactID: contactID, ChatID: chat.ID}})
		if err != nil {
			return fmt.Errorf("link chat to contact: %w", err)
		}
		fmt.Fprintf(stdout, "3. linked chat to contact %d (link %d)\n", links[0].ContactID, links[0].ID)
	}

	// 4. The client writes: an incoming message has a sender and no receiver.
	// Send generates the message id (msgid) before the first attempt, so a
	// retried send never creates a second message.
	question := "Hi! Is my order ready?"
	sent, _, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{
		ConversationID: conversationID,
		Sender:         &alice,
		Message:        kommo.TextMessage(question),
	})
	if err != nil {
		return fmt.Errorf("send client message: %w", err)
	}
	fmt.Fprintf(stdout, "4. client message sent: %q (amojo id %s, msgid %s)\n", question, sent.ID, sent.MsgID)

	// 5. Read the talk the message opened. The Chat API does not return talk
	// ids (Kommo sends them in CRM webhooks); the fake server knows them.
	talkID := cfg.talkID
	if srv != nil {
		if t, ok := srv.TalkForChat(chat.ID); ok {
			talkID = t.ID
		}
	}
	if talkID == 0 {
		fmt.Fprintln(stdout, "5. skipped reading the talk: set KOMMO_TALK_ID (shown in the chat in Kommo)")
	} else {
		talk, _, err := client.Talks.Get(ctx, talkID)
		if err != nil {
			return fmt.Errorf("get talk: %w", err)
		}
		fmt.Fprintf(stdout, "5. talk %d: contact %d, in work %t\n", talk.ID, talk.ContactID, talk.IsInWork)
	}

	// 6. A manager answers in Kommo; Kommo posts the message, signed with
	// the channel secret, to the channel's webhook URL.
	reply, err := awaitManagerReply(ctx, cfg, srv, secret, chat.ID, stdout, stderr)
	if err != nil && !errors.Is(err, errNoReply) {
		return err
	}
	if reply == nil {
		why := "set KOMMO_WEBHOOK_ADDR"
		if err != nil {
			why = err.Error()
		}
		fmt.Fprintf(stdout, "6. skipped the manager's reply: %s\n", why)
		fmt.Fprintln(stdout, "7. skipped delivery statuses: no manager message")
	} else {
		fmt.Fprintf(stdout, "6. %s replied through a signed webhook: %q (message %s)\n",
			reply.Sender.Name, reply.Message.Text, reply.Message.ID)

		// 7. Tell Kommo the client got the message, then read it. The id is
		// the amojo message id from the webhook.
		for _, st := range []kommo.DeliveryStatus{kommo.DeliveryStatusDelivered, kommo.DeliveryStatusRead} {
			if _, err := client.Messages.UpdateDeliveryStatus(ctx, scope, reply.Message.ID, &kommo.DeliveryStatusRequest{Status: st}); err != nil {
				return fmt.Errorf("update delivery status: %w", err)
			}
		}
		fmt.Fprintf(stdout, "7. marked message %s delivered, then read\n", reply.Message.ID)
	}

	// 8. Page through the history (newest first). All fetches pages lazily
	// and yields one error at most.
	var lines []string
	for msg, err := range client.History.All(ctx, scope, chat.ID, nil) {
		if err != nil {
			return fmt.Errorf("read history: %w", err)
		}
		from := "?"
		if msg.Sender != nil {
			from = msg.Sender.Name
		}
		lines = append(lines, fmt.Sprintf("   %s: %q", from, msg.Message.Text))
	}
	fmt.Fprintf(stdout, "8. history: %d messages\n", len(lines))
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}

	// 9. Close the talk without launching the NPS bot.
	if talkID == 0 {
		fmt.Fprintln(stdout, "9. skipped closing the talk: set KOMMO_TALK_ID")
	} else {
		_, err := client.Talks.Close(ctx, talkID, &kommo.CloseTalkRequest{ForceClose: true})
		switch {
		case errors.Is(err, kommo.ErrTalkClosed):
			fmt.Fprintf(stdout, "9. talk %d was already closed\n", talkID)
		case err != nil:
			return fmt.Errorf("close talk: %w", err)
		default:
			fmt.Fprintf(stdout, "9. closed talk %d\n", talkID)
		}
	}
	fmt.Fprintln(stdout, "done")
	return nil
}

// newClient returns a client for the configured account or, in embedded
// mode (srv != nil), for the kommotest server, with the channel secret that
// webhooks are signed with.
func newClient(cfg config, srv *kommotest.Server, stdout io.Writer) (*kommo.Client, string, error) {
	if srv != nil {
		fmt.Fprintf(stdout, "mode: embedded kommotest server at %s (set KOMMO_CHANNEL_ID to use a real account)\n", srv.URL())
		client, err := srv.Client() // signed with srv.ChannelSecret(), bearer srv.AccessToken()
		return client, srv.ChannelSecret(), err
	}
	fmt.Fprintf(stdout, "mode: real account %s\n", cfg.baseDomain)
	client, err := kommo.NewClient(
		kommo.WithChannel(cfg.channelID, cfg.channelSecret), // Chat API: every request is signed
		kommo.WithBaseDomain(cfg.baseDomain),                // CRM API v4 host
		kommo.WithAccessToken(cfg.accessToken),              // long-lived token
		kommo.WithAppInfo("kommo-quickstart", kommo.Version, ""),
	)
	return client, cfg.channelSecret, err // NewClient reports every bad option at once
}

// errNoReply means no manager answered in time.
var errNoReply = errors.New("no manager reply")

// awaitManagerReply serves the webhook handler and returns the first manager
// message in the chat: in embedded mode kommotest posts one, in real mode a
// manager writes it in Kommo. It returns nil when there is nowhere to listen.
func awaitManagerReply(ctx context.Context, cfg config, srv *kommotest.Server, secret, chatID string, stdout, stderr io.Writer) (*kommo.MessageEvent, error) {
	addr := cfg.webhookAddr
	if srv != nil {
		addr = "127.0.0.1:0" // any free loopback port
	}
	if addr == "" {
		return nil, nil
	}

	// The callback only hands the event over: Kommo waits 5 s for the 200
	// and never sends a hook again. The handler verifies the signature and
	// answers 401 to a forged hook before calling it.
	replies := make(chan *kommo.MessageEvent, 16)
	h, err := kommo.NewWebhookHandler(secret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		m, ok := ev.(*kommo.MessageEvent)
		if !ok || m.Conversation.ID != chatID {
			return nil // not for this example
		}
		select {
		case replies <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err() // 500, reported to the error hook
		}
	}, kommo.WithWebhookErrorHandler(func(r *http.Request, err error) {
		fmt.Fprintln(stderr, "webhook:", err)
	}))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kommo/{scope_id}", h)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for webhooks: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdownCtx)
	}()

	wait := cfg.replyTimeout
	if srv != nil {
		// Play Kommo: store a manager message and post its signed hook.
		// ":scope_id" is replaced with the scope, as Kommo does.
		hookURL := "http://" + ln.Addr().String() + "/kommo/:scope_id"
		if err := srv.DeliverWebhook(ctx, hookURL, kommotest.ManagerMessage(chatID, "Yes, it ships today.")); err != nil {
			return nil, fmt.Errorf("deliver webhook: %w", err)
		}
		wait = 5 * time.Second
	} else {
		fmt.Fprintf(stdout, "6. waiting up to %s for a manager to reply in Kommo (webhooks on %s)\n", wait, ln.Addr())
	}

	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case m := <-replies:
		return m, nil
	case <-timer.C:
		return nil, fmt.Errorf("%w within %s", errNoReply, wait)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
