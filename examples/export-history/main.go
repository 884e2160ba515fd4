// Command export-history writes the whole history of a chat as JSON Lines:
// one kommo.HistoryMessage per line, newest first (the order Kommo returns
// it). It pages through the history with History.All, which fetches 50
// messages per request as the loop advances, so a long chat is streamed, not
// loaded at once.
//
// By default it runs against an embedded kommotest server, seeds a chat with
// -demo-messages messages and exports it to stdout (or to -out):
//
//	go run ./examples/export-history -out /tmp/chat.jsonl
//
// Set KOMMO_CHANNEL_ID to export a chat of a real account (-chat is then
// required: the chat's amojo id, e.g. message.conversation.id of a webhook):
//
//	KOMMO_CHANNEL_ID        channel id from the channel registration (turns real mode on)
//	KOMMO_CHANNEL_SECRET    channel secret
//	KOMMO_ACCOUNT_AMOJO_ID  the account's amojo id, or else:
//	KOMMO_BASE_DOMAIN and KOMMO_ACCESS_TOKEN to fetch it with Account.AmojoID
//
// Only chats of your own channel can be read.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

type config struct {
	demo.Account        // an empty ChannelID means embedded mode
	chat         string // amojo chat id
	out          string // file; "" or "-" means stdout
	demoMessages int

	// server is the embedded fake to use; run starts one when it is nil.
	server *kommotest.Server
}

func main() {
	cfg := config{Account: demo.FromEnv()}
	flag.StringVar(&cfg.chat, "chat", "", "amojo id of the chat to export (embedded mode: a seeded demo chat when empty)")
	flag.StringVar(&cfg.out, "out", "", "output file (default stdout)")
	flag.IntVar(&cfg.demoMessages, "demo-messages", 120, "embedded mode: messages in the demo chat")
	flag.Parse()
	if cfg.ChannelID != "" && (cfg.ChannelSecret == "" || cfg.chat == "" || !cfg.FindsAccount()) {
		demo.Usage("export-history", "real mode needs -chat, KOMMO_CHANNEL_SECRET and "+
			"KOMMO_ACCOUNT_AMOJO_ID (or KOMMO_BASE_DOMAIN and KOMMO_ACCESS_TOKEN)")
	}
	demo.Main("export-history", func(ctx context.Context) error { return run(ctx, cfg, os.Stdout, os.Stderr) })
}

// run exports the chat. The data goes to stdout (or cfg.out); everything
// else to stderr.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	opts := demo.Options{App: "kommo-export-history", Real: "account", Scope: true, Server: cfg.server}
	sess, err := demo.Open(ctx, cfg.Account, opts, stderr)
	if err != nil {
		return err
	}
	defer sess.Close()
	client, srv, scope := sess.Client, sess.Server, sess.ScopeID // srv is nil in real mode
	chatID := cfg.chat
	if chatID == "" {
		if srv == nil {
			return errors.New("-chat is required with a real account")
		}
		if chatID, err = seed(ctx, client, scope, srv.BotID(), cfg.demoMessages); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "demo: seeded chat %s with %d messages\n", chatID, cfg.demoMessages)
	}

	// export streams the history to w, one JSON object per line. All
	// fetches the next page when the loop needs it.
	n := 0
	export := func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for msg, err := range client.History.All(ctx, scope, chatID, nil) {
			if err != nil {
				return fmt.Errorf("read history after %d messages: %w", n, err)
			}
			if err := enc.Encode(msg); err != nil {
				return err
			}
			n++
		}
		return bw.Flush()
	}
	dest := cfg.out
	if dest == "" || dest == "-" {
		dest, err = "stdout", export(stdout)
	} else {
		err = writeFileAtomically(dest, export)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d messages of chat %s to %s\n", n, chatID, dest)
	return nil
}

// writeFileAtomically writes a temporary file next to path and renames it
// over path once write succeeded, so a failed export never leaves a
// truncated file behind.
func writeFileAtomically(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// seed creates a demo chat with n silent messages, a minute apart,
// alternating between the client and the channel bot, and returns its amojo
// id.
func seed(ctx context.Context, client *kommo.Client, scope, botID string, n int) (string, error) {
	const conv = "export-demo-chat"
	carol := kommo.Participant{ID: "export-demo-client", Name: "Carol"}
	chat, _, err := client.Chats.Create(ctx, scope, &kommo.CreateChatRequest{ConversationID: conv, User: carol})
	if err != nil {
		return "", fmt.Errorf("create demo chat: %w", err)
	}
	start := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		req := &kommo.SendMessageRequest{
			MsgID:          fmt.Sprintf("export-demo-%03d", i),
			ConversationID: conv,
			Time:           start.Add(time.Duration(i) * time.Minute),
			Sender:         &carol,
			Message:        kommo.TextMessage(fmt.Sprintf("message %d", i)),
			Silent:         true,
		}
		if i%2 == 0 {
			req.Sender = &kommo.Participant{ID: "bot", RefID: botID, Name: "Bot"}
			req.Receiver = &carol
		}
		if _, _, err := client.Messages.Send(ctx, scope, req); err != nil {
			return "", fmt.Errorf("seed message %d: %w", i, err)
		}
	}
	return chat.ID, nil
}
