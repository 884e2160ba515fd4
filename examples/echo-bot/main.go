// Command echo-bot is a webhook server that answers every message a manager
// writes in Kommo: it marks the message delivered and sends it back to the
// chat as a message of the channel's bot.
//
// It shows the webhook pattern Kommo needs. Kommo posts each hook once,
// waits at most 5 seconds for a 200 and never retries, so the callback only
// puts the event on a queue and returns; a worker does the slow part (the API
// calls) afterwards. On shutdown the server stops taking hooks, finishes the
// ones in flight, and the worker drains the queue.
//
// By default it runs against an embedded kommotest server that plays the
// manager (-demo messages), then exits:
//
//	go run ./examples/echo-bot -demo 3
//
// Set KOMMO_CHANNEL_ID to serve a real channel until Ctrl+C:
//
//	KOMMO_CHANNEL_ID      channel id from the channel registration (turns real mode on)
//	KOMMO_CHANNEL_SECRET  channel secret (signs API calls, verifies hooks)
//	KOMMO_BOT_ID          the channel bot's id from the registration (sender.ref_id of its messages)
//	KOMMO_WEBHOOK_ADDR    listen address, default ":8080"; the channel's webhook URL must reach it
//	                      as https://host/kommo/:scope_id (Kommo puts the scope id at the end)
//
// No CRM token is needed: every hook names its scope, so one bot serves every
// account the channel is connected to.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// config says which channel to serve. An empty channelID means embedded mode.
type config struct {
	channelID, channelSecret, botID string
	webhookAddr                     string
	demo                            int // embedded mode: manager messages to simulate

	// server is the embedded fake to use; run starts one when it is nil.
	server *kommotest.Server
}

func main() {
	demo := flag.Int("demo", 3, "embedded mode: how many manager messages to simulate")
	flag.Parse()
	cfg := config{
		channelID:     os.Getenv("KOMMO_CHANNEL_ID"),
		channelSecret: os.Getenv("KOMMO_CHANNEL_SECRET"),
		botID:         os.Getenv("KOMMO_BOT_ID"),
		webhookAddr:   cmp.Or(os.Getenv("KOMMO_WEBHOOK_ADDR"), ":8080"),
		demo:          *demo,
	}
	if cfg.channelID != "" && (cfg.channelSecret == "" || cfg.botID == "") {
		fmt.Fprintln(os.Stderr, "echo-bot: real mode (KOMMO_CHANNEL_ID is set) also needs KOMMO_CHANNEL_SECRET and KOMMO_BOT_ID")
		os.Exit(2)
	}

	// Ctrl+C or SIGTERM starts a graceful shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "echo-bot:", err)
		os.Exit(1)
	}
}

// job is one manager message to answer, with the scope it came for.
type job struct {
	scopeID string
	msg     *kommo.MessageEvent
}

// run serves webhooks until ctx is done (real mode) or the demo is over.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	logger := log.New(stderr, "echo-bot: ", 0) // safe for concurrent use

	srv := cfg.server
	if cfg.channelID == "" && srv == nil {
		srv = kommotest.NewServer()
		defer srv.Close()
	}
	client, err := newClient(cfg, srv, stdout)
	if err != nil {
		return err
	}
	secret, botID, addr := cfg.channelSecret, cfg.botID, cfg.webhookAddr
	if srv != nil {
		secret, botID, addr = srv.ChannelSecret(), srv.BotID(), "127.0.0.1:0"
	}

	// The callback hands each manager message to the worker and returns at
	// once; a nil return is the 200 that tells Kommo the hook is safe. This
	// queue is in memory, so hooks still queued when the process dies are
	// lost: a production bot puts them in a durable queue instead.
	jobs := make(chan job, 1024)
	h, err := kommo.NewWebhookHandler(secret, func(ctx context.Context, ev kommo.WebhookEvent) error {
		m, ok := ev.(*kommo.MessageEvent)
		if !ok {
			return nil // typing, reactions and unknown kinds need no answer
		}
		select {
		case jobs <- job{kommo.WebhookScopeID(ctx), m}:
			return nil
		case <-ctx.Done(): // the queue stayed full until the handler's deadline
			return ctx.Err() // 500, reported to the error hook
		}
	}, kommo.WithWebhookErrorHandler(func(r *http.Request, err error) {
		// Kommo never redelivers: a failure here is a message to recover
		// by hand (e.g. from the chat's history).
		logger.Printf("webhook %s rejected: %v", r.URL.Path, err)
	}))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /kommo/{scope_id}", h)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	hookURL := "http://" + ln.Addr().String() + "/kommo/:scope_id"
	fmt.Fprintf(stdout, "listening for webhooks on %s\n", hookURL)
	if srv == nil {
		fmt.Fprintln(stdout, "press Ctrl+C to stop")
	}

	// The worker answers queued messages until told to stop, then drains
	// the queue. Its context outlives ctx so the drain can finish. From
	// here on only the worker writes to stdout until it is done.
	b := &bot{client: client, botID: botID, out: stdout, log: logger}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopWorker, workerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(workerDone)
		for {
			select {
			case j := <-jobs:
				b.answer(workCtx, j)
			case <-stopWorker:
				for {
					select {
					case j := <-jobs:
						b.answer(workCtx, j)
					default:
						return
					}
				}
			}
		}
	}()

	var runErr error
	if srv != nil {
		runErr = demo(ctx, client, srv, hookURL, cfg.demo)
	} else {
		select {
		case <-ctx.Done():
		case runErr = <-serveErr:
		}
	}

	// Graceful shutdown: stop accepting hooks and wait for those in flight,
	// then let the worker finish the queue (for up to 10 s).
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		logger.Printf("shutdown: %v", err)
	}
	close(stopWorker)
	select {
	case <-workerDone:
	case <-shutdownCtx.Done():
		cancelWork() // give up on the rest of the queue
		<-workerDone
	}
	fmt.Fprintf(stdout, "shut down: %d manager messages, %d echoed, %d marked delivered, %d failed\n",
		b.received, b.echoed, b.delivered, b.failed)

	if srv != nil && runErr == nil {
		runErr = checkDemo(srv, botID, cfg.demo, stdout)
	}
	return runErr
}

// bot answers manager messages. Only the worker goroutine uses it.
type bot struct {
	client *kommo.Client
	botID  string
	out    io.Writer
	log    *log.Logger

	received, echoed, delivered, failed int
}

// answer marks one manager message delivered and echoes it back as the bot.
func (b *bot) answer(ctx context.Context, j job) {
	m := j.msg
	b.received++

	// The client "got" the message: report it with its amojo id. (A bridge
	// reports this once the messenger accepted the message.)
	_, err := b.client.Messages.UpdateDeliveryStatus(ctx, j.scopeID, m.Message.ID,
		&kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusDelivered})
	if err != nil {
		b.fail(m, "mark delivered", err)
		return
	}
	b.delivered++

	text := m.Message.Text
	if text == "" {
		text = "[" + string(m.Message.Type) + "]" // a file, picture, ...
	}
	req := &kommo.SendMessageRequest{
		// A msgid derived from the hook makes the echo idempotent: answering
		// the same hook twice stores one message.
		MsgID:          "echo-" + m.Message.ID,
		ConversationID: m.Conversation.ClientID,
		// Outgoing by the bot: the sender's ref_id is the bot id, the
		// receiver is the client. Kommo sends no hook for bot messages, so
		// the echo does not come back.
		Sender: &kommo.Participant{ID: "echo-bot", RefID: b.botID, Name: "Echo bot"},
		Receiver: &kommo.Participant{
			ID:    m.Receiver.ClientID,
			RefID: m.Receiver.ID,
			Name:  cmp.Or(m.Receiver.Name, m.Receiver.ClientID, "Client"),
		},
		Message: kommo.TextMessage("echo: " + text),
	}
	if m.IsWriteFirst() {
		// A manager opened the chat with "Write first": it has no id of
		// yours yet. Name the chat and the client, and bind them to Kommo's
		// ids with conversation_ref_id and the receiver's ref_id.
		req.ConversationID = "chat-" + m.Conversation.ID
		req.ConversationRefID = m.Conversation.ID
		req.Receiver.ID = "client-" + m.Receiver.ID
		req.Receiver.Name = cmp.Or(m.Receiver.Name, m.Receiver.Phone, "Client")
	}
	sent, _, err := b.client.Messages.Send(ctx, j.scopeID, req)
	if err != nil {
		b.fail(m, "echo", err)
		return
	}
	b.echoed++
	fmt.Fprintf(b.out, "echoed %q in chat %s: message %s (original %s marked delivered)\n",
		m.Message.Text, req.ConversationID, sent.ID, m.Message.ID)
}

func (b *bot) fail(m *kommo.MessageEvent, what string, err error) {
	b.failed++
	switch {
	case errors.Is(err, kommo.ErrNotFound):
		// The scope is gone: the integration was uninstalled, or the
		// channel must be connected again.
		b.log.Printf("%s %s: channel not connected to the account: %v", what, m.Message.ID, err)
	case errors.Is(err, kommo.ErrInvalidRequest):
		b.log.Printf("%s %s: the SDK refused the request: %v", what, m.Message.ID, err)
	default:
		b.log.Printf("%s %s: %v", what, m.Message.ID, err) // already retried by the SDK
	}
}

// newClient returns a Chat API client for the configured channel or, in
// embedded mode (srv != nil), for the kommotest server.
func newClient(cfg config, srv *kommotest.Server, stdout io.Writer) (*kommo.Client, error) {
	if srv != nil {
		fmt.Fprintf(stdout, "mode: embedded kommotest server at %s (set KOMMO_CHANNEL_ID to use a real channel)\n", srv.URL())
		return srv.Client() // signed with srv.ChannelSecret()
	}
	fmt.Fprintf(stdout, "mode: real channel %s\n", cfg.channelID)
	return kommo.NewClient(
		kommo.WithChannel(cfg.channelID, cfg.channelSecret), // the Chat API is all the bot needs
		kommo.WithAppInfo("kommo-echo-bot", kommo.Version, ""),
	)
}

const demoConversation = "echo-demo-chat"

// demo plays Kommo: a client opens a chat, then a manager writes n messages
// in it, each posted to the bot as a signed hook. It returns once every
// echo is stored and every message is marked delivered.
func demo(ctx context.Context, client *kommo.Client, srv *kommotest.Server, hookURL string, n int) error {
	scope := srv.Connect(srv.AccountAmojoID()) // as Channels.Connect would
	_, _, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{
		ConversationID: demoConversation,
		Sender:         &kommo.Participant{ID: "echo-demo-client", Name: "Bob"},
		Message:        kommo.TextMessage("Hello, is anyone there?"),
	})
	if err != nil {
		return fmt.Errorf("demo client message: %w", err)
	}
	for i := 1; i <= n; i++ {
		ev := kommotest.ManagerMessage(demoConversation, fmt.Sprintf("Hello #%d", i))
		if err := srv.DeliverWebhook(ctx, hookURL, ev); err != nil {
			return fmt.Errorf("deliver hook %d: %w", i, err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		echoes, delivered := demoCounts(srv, srv.BotID())
		if echoes >= n && delivered >= n {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d echoes (have %d, %d delivered): %w", n, echoes, delivered, ctx.Err())
		}
	}
}

// demoCounts counts the bot's echoes and the manager messages marked
// delivered in the demo chat.
func demoCounts(srv *kommotest.Server, botID string) (echoes, delivered int) {
	for _, m := range srv.Messages(srv.ScopeID(), demoConversation) {
		switch {
		case m.Sender.ID == botID:
			echoes++
		case m.FromKommo && m.DeliveryStatus == int(kommo.DeliveryStatusDelivered):
			delivered++
		}
	}
	return echoes, delivered
}

// checkDemo prints what the fake server holds once the bot has stopped.
func checkDemo(srv *kommotest.Server, botID string, n int, stdout io.Writer) error {
	echoes, delivered := demoCounts(srv, botID)
	fmt.Fprintf(stdout, "kommotest: %d echoes stored, %d manager messages delivered\n", echoes, delivered)
	if echoes != n || delivered != n {
		return fmt.Errorf("want %d echoes and %d delivered messages", n, n)
	}
	return nil
}
