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
	"net/http"
	"os"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

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
		demo.Usage("quickstart", err.Error())
	}
	cfg.replyTimeout = *replyTimeout
	demo.Main("quickstart", func(ctx context.Context) error { return run(ctx, cfg, os.Stdout, os.Stderr) })
}

// run is the whole example; main only reads the configuration.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	// The client: in real mode kommo.NewClient(kommo.WithChannel(id, secret),
	// kommo.WithBaseDomain(domain), kommo.WithAccessToken(token)), in
	// embedded mode srv.Client(), wired to the fake.
	sess, err := demo.Open(ctx, cfg.Account, demo.Options{App: "kommo-quickstart", Real: "account", Server: cfg.server}, stdout)
	if err != nil {
		return err
	}
	defer sess.Close()
	client, srv := sess.Client, sess.Server // srv is nil in real mode

	// The account's amojo id (its id in the chat service, not the CRM id):
	// KOMMO_ACCOUNT_AMOJO_ID, or else client.Account.AmojoID asks for it.
	amojoID, err := demo.AmojoID(ctx, client, cfg.AccountAmojoID)
	if err != nil {
		return err
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
	reply, err := awaitManagerReply(ctx, cfg, sess, chat.ID, stdout, stderr)
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

// errNoReply means no manager answered in time.
var errNoReply = errors.New("no manager reply")

// awaitManagerReply serves the webhook handler and returns the first manager
// message in the chat: in embedded mode kommotest posts one, in real mode a
// manager writes it in Kommo. It returns nil when there is nowhere to listen.
func awaitManagerReply(ctx context.Context, cfg config, sess *demo.Session, chatID string, stdout, stderr io.Writer) (*kommo.MessageEvent, error) {
	if sess.WebhookAddr == "" {
		return nil, nil
	}

	// The callback only hands the event over: Kommo waits 5 s for the 200
	// and never sends a hook again. The handler verifies the signature and
	// answers 401 to a forged hook before calling it.
	replies := make(chan *kommo.MessageEvent, 16)
	h, err := kommo.NewWebhookHandler(sess.ChannelSecret, func(ctx context.Context, ev kommo.WebhookEvent) error {
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
	hs, err := demo.ServeWebhooks(sess.WebhookAddr, h) // at POST /kommo/{scope_id}
	if err != nil {
		return nil, fmt.Errorf("listen for webhooks: %w", err)
	}
	defer hs.Stop()

	wait := cfg.replyTimeout
	if srv := sess.Server; srv != nil {
		// Play Kommo: store a manager message and post its signed hook.
		// ":scope_id" is replaced with the scope, as Kommo does.
		if err := srv.DeliverWebhook(ctx, hs.WebhookURL(), kommotest.ManagerMessage(chatID, "Yes, it ships today.")); err != nil {
			return nil, fmt.Errorf("deliver webhook: %w", err)
		}
		wait = 5 * time.Second
	} else {
		fmt.Fprintf(stdout, "6. waiting up to %s for a manager to reply in Kommo (webhooks on %s)\n", wait, hs.Addr())
	}

	m, err := demo.Await(ctx, replies, wait)
	if errors.Is(err, demo.ErrTimeout) {
		return nil, fmt.Errorf("%w within %s", errNoReply, wait)
	}
	return m, err
}
