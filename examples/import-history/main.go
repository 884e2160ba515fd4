// Command import-history imports old conversations into Kommo from a JSON
// Lines file with one message per line:
//
//	{"id":"m-1","chat_id":"chat-1","from":"client","client_id":"c-1","client_name":"Alice","text":"Hi!","time":"2024-03-01T09:00:00Z"}
//
//	id           your message id, sent as msgid: Kommo stores a message id once
//	chat_id      your chat id (conversation_id)
//	from         "client" (a message the client wrote) or "bot" (one written on
//	             your side; it is imported as written by the channel bot)
//	client_id    your id of the chat's client
//	client_name  the client's display name
//	text         the message text
//	time         when the message was written (RFC 3339)
//
// Messages are sent oldest first with silent=true, so Kommo creates no lead
// and notifies nobody, except the newest message of each chat, which is sent
// with silent=false as Kommo asks.
//
// The import can be interrupted and run again: the id of every imported
// message is appended to a state file (-state, default <file>.state) and
// synced to disk, and a rerun skips those ids. A message sent just before a
// crash, but not yet recorded, is sent again with the same msgid, which
// identifies it (kommotest keeps one copy; Kommo's docs do not say how a
// repeated msgid is treated).
//
// Without -file, in embedded mode, it writes a demo file of -demo-messages
// messages to a temporary directory and imports it into a kommotest server:
//
//	go run ./examples/import-history                          # 40 messages at 7 requests/s
//	go run ./examples/import-history -client-rps 0 -server-rps 20  # see the server's 429s
//
// The client throttles itself to -client-rps requests per second (default 7,
// Kommo's limit; 0 turns throttling off). -server-rps makes the embedded
// server answer 429 above that rate, which the client retries.
//
// Set KOMMO_CHANNEL_ID to import into a real account (the channel must be
// connected to it, see examples/quickstart):
//
//	KOMMO_CHANNEL_ID        channel id from the channel registration (turns real mode on)
//	KOMMO_CHANNEL_SECRET    channel secret
//	KOMMO_BOT_ID            the channel bot's id from the registration (sender of "bot" messages)
//	KOMMO_ACCOUNT_AMOJO_ID  the account's amojo id, or else:
//	KOMMO_BASE_DOMAIN and KOMMO_ACCESS_TOKEN to fetch it with Account.AmojoID
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

type config struct {
	demo.Account // an empty ChannelID means embedded mode
	file, state  string
	demoMessages int
	clientRPS    float64 // 0: no client-side throttling
	serverRPS    float64 // embedded mode: the server's rate limit (0: none)

	// server is the embedded fake to use; run starts one when it is nil.
	server *kommotest.Server
	// clientOptions are added to the client's options (tests use them).
	clientOptions []kommo.Option
}

func main() {
	cfg := config{Account: demo.FromEnv()}
	flag.StringVar(&cfg.file, "file", "", "JSON Lines file to import (embedded mode: a demo file when empty)")
	flag.StringVar(&cfg.state, "state", "", "state file of imported ids (default <file>.state)")
	flag.IntVar(&cfg.demoMessages, "demo-messages", 40, "size of the demo file")
	flag.Float64Var(&cfg.clientRPS, "client-rps", kommo.DefaultRateLimit, "client requests per second (0: unlimited)")
	flag.Float64Var(&cfg.serverRPS, "server-rps", 0, "embedded mode: the server's rate limit (0: none)")
	flag.Parse()
	if cfg.ChannelID != "" && (cfg.ChannelSecret == "" || cfg.BotID == "" || cfg.file == "" || !cfg.FindsAccount()) {
		demo.Usage("import-history", "real mode needs -file, KOMMO_CHANNEL_SECRET, KOMMO_BOT_ID and "+
			"KOMMO_ACCOUNT_AMOJO_ID (or KOMMO_BASE_DOMAIN and KOMMO_ACCESS_TOKEN)")
	}
	// Ctrl+C stops after the message in flight; run again to resume.
	demo.Main("import-history", func(ctx context.Context) error { return run(ctx, cfg, os.Stdout, os.Stderr) })
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	sess, err := demo.Open(ctx, cfg.Account, demo.Options{
		App: "kommo-import-history", Real: "account", Scope: true, Server: cfg.server,
		ServerOptions: []kommotest.Option{kommotest.WithRateLimit(cfg.serverRPS, max(1, int(cfg.serverRPS)))},
		// The client waits between requests to stay under the rate; burst 1
		// spreads them evenly.
		ClientOptions: append([]kommo.Option{kommo.WithRateLimit(cfg.clientRPS, 1)}, cfg.clientOptions...),
	}, stdout)
	if err != nil {
		return err
	}
	defer sess.Close()
	client, srv, scope, botID := sess.Client, sess.Server, sess.ScopeID, sess.BotID // srv is nil in real mode

	file := cfg.file
	if file == "" {
		if srv == nil {
			return errors.New("-file is required with a real account")
		}
		dir, err := os.MkdirTemp("", "kommo-import-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		file = filepath.Join(dir, "history.jsonl")
		if err := writeDemoFile(file, cfg.demoMessages); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "demo: wrote %d messages to %s\n", cfg.demoMessages, file)
	}
	recs, err := readRecords(file)
	if err != nil {
		return err
	}
	state, err := openState(cmp.Or(cfg.state, file+".state"))
	if err != nil {
		return err
	}
	defer state.Close()

	// Oldest first; the newest message of each chat is the one Kommo may
	// notify about (silent=false).
	slices.SortStableFunc(recs, func(a, b record) int { return a.Time.Compare(b.Time) })
	newest := map[string]string{} // chat id → id of its newest message
	for _, r := range recs {
		newest[r.ChatID] = r.ID
	}

	start := time.Now()
	var imported, skipped, failed int
	bar := progress{w: stderr, total: len(recs)}
	for _, r := range recs {
		if state.done[r.ID] {
			skipped++
			bar.update(imported + skipped + failed)
			continue
		}
		_, _, err := client.Messages.Send(ctx, scope, r.request(botID, newest[r.ChatID] == r.ID))
		switch {
		case err == nil:
			if err := state.add(r.ID); err != nil {
				return err
			}
			imported++
		case ctx.Err() != nil:
			bar.done()
			fmt.Fprintf(stdout, "interrupted: imported %d, skipped %d, failed %d; run again to resume\n", imported, skipped, failed)
			return ctx.Err()
		default:
			// Transient failures were already retried by the SDK; this
			// one is permanent (e.g. a 400). It is not recorded, so a
			// rerun tries it again.
			failed++
			bar.done()
			var ve *kommo.ValidationError
			if errors.As(err, &ve) {
				fmt.Fprintf(stderr, "message %s: invalid: %s\n", r.ID, strings.Join(ve.Problems, "; "))
			} else {
				fmt.Fprintf(stderr, "message %s: %v\n", r.ID, err)
			}
		}
		bar.update(imported + skipped + failed)
	}
	bar.done()
	elapsed := time.Since(start)

	fmt.Fprintf(stdout, "imported %d, skipped %d, failed %d\n", imported, skipped, failed)
	fmt.Fprintf(stdout, "elapsed %s, %.1f msgs/s\n", elapsed.Round(time.Millisecond), float64(imported)/elapsed.Seconds())
	if srv != nil {
		tooMany := 0
		for _, req := range srv.Requests() {
			if req.Status == 429 {
				tooMany++
			}
		}
		fmt.Fprintf(stdout, "kommotest: %d messages stored, %d answers were 429 Too Many Requests\n", len(srv.AllMessages()), tooMany)
	}
	if failed > 0 {
		return fmt.Errorf("%d messages failed", failed)
	}
	return nil
}

// request builds the new_message of a record. Every message but the newest
// of its chat is silent.
func (r record) request(botID string, newest bool) *kommo.SendMessageRequest {
	client := &kommo.Participant{ID: r.ClientID, Name: r.ClientName}
	req := &kommo.SendMessageRequest{
		MsgID:          r.ID, // Kommo stores a msgid once: resending is safe
		ConversationID: r.ChatID,
		Time:           r.Time,
		Message:        kommo.TextMessage(r.Text),
		Silent:         !newest,
	}
	if r.From == "bot" {
		// Outgoing by the channel bot: ref_id is the bot id, the receiver
		// is the client. Kommo sends no webhook for these.
		req.Sender = &kommo.Participant{ID: "bot", RefID: botID, Name: "Bot"}
		req.Receiver = client
	} else {
		req.Sender = client // incoming: a sender and no receiver
	}
	return req
}
