// Command echo-bot is a webhook server that answers every message a manager
// writes in Kommo: it marks the message delivered and sends it back to the
// chat as a message of the channel's bot.
//
// It shows the webhook pattern Kommo needs. Kommo posts each hook once,
// waits at most 5 seconds for a 200 and never retries, so the handler only
// verifies the hook and puts it in a queue (kommo.WithWebhookQueue), and a
// kommo.WebhookWorker does the slow part (the API calls) afterwards, with
// retries. On shutdown the server stops taking hooks, finishes the ones in
// flight, and the worker drains the queue.
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
// Several replicas behind one webhook URL share a queue and the rate
// limits in Redis: run each with -redis redis://host:6379/0. A hook any of
// them took is answered by whichever replica's worker gets it first, and
// one killed mid-run loses nothing: its unacknowledged hooks go to the
// others after the queue's lease (30 s).
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
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommoredis"
	"github.com/kommo-go/kommo/kommotest"
)

// config says which channel to serve (an empty ChannelID means embedded mode).
type config struct {
	demo.Account
	demo int // embedded mode: manager messages to simulate
	// redisURL, when set, keeps the webhook queue and the rate limiter in
	// Redis, shared by every replica of the bot.
	redisURL string
	lease    time.Duration // with redisURL: the queue's lease

	// server is the embedded fake to use; run starts one when it is nil.
	server *kommotest.Server
}

func main() {
	demoN := flag.Int("demo", 3, "embedded mode: how many manager messages to simulate")
	redisURL := flag.String("redis", "", "keep the webhook queue and rate limits in Redis, shared by replicas (redis://host:6379/0)")
	lease := flag.Duration("lease", kommoredis.DefaultLease, "with -redis: how long a hook a replica took stays with it before another replica may take it")
	flag.Parse()
	cfg := config{Account: demo.FromEnv(), demo: *demoN, redisURL: *redisURL, lease: *lease}
	cfg.WebhookAddr = cmp.Or(cfg.WebhookAddr, ":8080")
	if cfg.ChannelID != "" && (cfg.ChannelSecret == "" || cfg.BotID == "") {
		demo.Usage("echo-bot", "real mode (KOMMO_CHANNEL_ID is set) also needs KOMMO_CHANNEL_SECRET and KOMMO_BOT_ID")
	}
	// Ctrl+C or SIGTERM starts a graceful shutdown.
	demo.Main("echo-bot", func(ctx context.Context) error { return run(ctx, cfg, os.Stdout, os.Stderr) })
}

// job is one manager message to answer, with the scope it came for.
type job struct {
	scopeID string
	msg     *kommo.MessageEvent
}

// run serves webhooks until ctx is done (real mode) or the demo is over.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	logger := log.New(stderr, "echo-bot: ", 0) // safe for concurrent use

	st, err := openStores(cfg.redisURL, cfg.lease)
	if err != nil {
		return err
	}
	defer st.close()
	var clientOpts []kommo.Option
	if st.limiter != nil {
		clientOpts = append(clientOpts, kommo.WithLimiter(st.limiter)) // replicas share each account's 7 rps
	}
	// The Chat API is all the bot needs.
	sess, err := demo.Open(ctx, cfg.Account, demo.Options{App: "kommo-echo-bot", Real: "channel", Server: cfg.server,
		ClientOptions: clientOpts}, stdout)
	if err != nil {
		return err
	}
	defer sess.Close()
	client, srv, botID := sess.Client, sess.Server, sess.BotID // srv is nil in real mode
	b := &bot{client: client, botID: botID, out: stdout, log: logger}

	// The handler verifies each hook, puts it in the queue and answers 200
	// at once; the worker answers it afterwards, with retries. Without
	// -redis the queue is in memory, so hooks still queued when the
	// process dies are lost; with it the queue is in Redis, shared by the
	// replicas, and survives a crash (see queue.go).
	queue := st.queue
	onError := func(r *http.Request, err error) {
		// Kommo never redelivers: a failure here is a message to recover
		// by hand (e.g. from the chat's history).
		logger.Printf("webhook %s rejected: %v", r.URL.Path, err)
	}
	// b.handle is also the fallback the handler runs inline if the queue
	// is down, so a hook Kommo sends once is not lost.
	h, err := kommo.NewWebhookHandler(sess.ChannelSecret, b.handle,
		kommo.WithWebhookQueue(queue), kommo.WithWebhookErrorHandler(onError))
	if err != nil {
		return err
	}
	// One worker goroutine keeps each chat's echoes in order; a failed
	// echo is tried again, up to 8 times, then reported to Kommo as not
	// delivered (status -1), where the manager sees it.
	// Each run must end well within the queue's lease, or another replica
	// takes the hook while this one still runs it.
	timeout := kommo.WebhookWorkerDefaultTimeout
	if cfg.redisURL != "" {
		timeout = min(timeout, cfg.lease/2)
	}
	worker, err := kommo.NewWebhookWorker(queue, b.handle, kommo.WithWorkerConcurrency(1), kommo.WithWorkerTimeout(timeout),
		kommo.WithWorkerDeliveryStatus(client),
		kommo.WithWorkerErrorHandler(func(d *kommo.WebhookDelivery, err error) {
			logger.Printf("queued hook %s: %v", d.ID, err)
		}))
	if err != nil {
		return err
	}
	hs, err := demo.ServeWebhooks(sess.WebhookAddr, h) // at POST /kommo/{scope_id}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "listening for webhooks on %s\n", hs.WebhookURL())
	if srv == nil {
		fmt.Fprintln(stdout, "press Ctrl+C to stop")
	}

	// The worker runs until told to stop. Its context outlives ctx so that
	// the queue can drain on shutdown.
	workCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(workCtx) }()

	var runErr error
	if srv != nil {
		runErr = playManager(ctx, client, srv, hs.WebhookURL(), cfg.demo)
	} else {
		select {
		case <-ctx.Done():
		case runErr = <-hs.Err():
		}
	}

	// Graceful shutdown: stop accepting hooks and wait for those in flight,
	// let the worker finish what is queued here (for up to 10 s; with
	// -redis the rest stays queued for the other replicas), then stop it.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		logger.Printf("shutdown: %v", err)
	}
	drain(shutdownCtx, queue)
	stopWorker()
	<-workerDone
	fmt.Fprintf(stdout, "shut down: %d manager messages, %d echoed, %d marked delivered, %d failed\n",
		b.received.Load(), b.echoed.Load(), b.delivered.Load(), b.failed.Load())

	if srv != nil && runErr == nil {
		runErr = checkDemo(srv, botID, cfg.demo, stdout)
	}
	return runErr
}

// drain waits until the in-memory queue is empty or ctx ends. A shared
// queue needs no drain: its other workers go on.
func drain(ctx context.Context, q kommo.WebhookQueue) {
	mq, ok := q.(*kommo.MemoryWebhookQueue)
	if !ok {
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if queued, _ := mq.Len(); queued == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// bot answers manager messages, from the worker (and from the handler
// when the queue is down).
type bot struct {
	client *kommo.Client
	botID  string
	out    io.Writer
	log    *log.Logger

	received, echoed, delivered, failed atomic.Int64
}

// handle is the webhook callback: it answers manager messages and ignores
// the rest (typing, reactions, unknown kinds). An error asks the worker to
// try again later.
func (b *bot) handle(ctx context.Context, ev kommo.WebhookEvent) error {
	m, ok := ev.(*kommo.MessageEvent)
	if !ok {
		return nil
	}
	return b.answer(ctx, job{kommo.WebhookScopeID(ctx), m})
}

// answer marks one manager message delivered and echoes it back as the
// bot. It returns an error only for a failure worth another try.
func (b *bot) answer(ctx context.Context, j job) error {
	m := j.msg
	b.received.Add(1)

	// The client "got" the message: report it with its amojo id. (A bridge
	// reports this once the messenger accepted the message.)
	_, err := b.client.Messages.UpdateDeliveryStatus(ctx, j.scopeID, m.Message.ID,
		&kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusDelivered})
	if err != nil {
		return b.fail(m, "mark delivered", err)
	}
	b.delivered.Add(1)

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
		return b.fail(m, "echo", err)
	}
	b.echoed.Add(1)
	fmt.Fprintf(b.out, "echoed %q in chat %s: message %s (original %s marked delivered)\n",
		m.Message.Text, req.ConversationID, sent.ID, m.Message.ID)
	return nil
}

// fail counts and logs a failure and returns the error when another try
// may succeed (nil when none can).
func (b *bot) fail(m *kommo.MessageEvent, what string, err error) error {
	b.failed.Add(1)
	switch {
	case errors.Is(err, kommo.ErrNotFound):
		// The scope is gone: the integration was uninstalled, or the
		// channel must be connected again.
		b.log.Printf("%s %s: channel not connected to the account: %v", what, m.Message.ID, err)
		return nil
	case errors.Is(err, kommo.ErrInvalidRequest):
		b.log.Printf("%s %s: the SDK refused the request: %v", what, m.Message.ID, err)
		return nil
	}
	b.log.Printf("%s %s: %v", what, m.Message.ID, err) // already retried by the SDK
	return err
}
