package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kommo-go/kommo"
)

// The API commands read the same KOMMO_* variables as the examples:
//
//	KOMMO_CHANNEL_ID, KOMMO_CHANNEL_SECRET  the channel (Chat API)
//	KOMMO_BASE_DOMAIN, KOMMO_ACCESS_TOKEN   the account (CRM API)
//	KOMMO_ACCOUNT_AMOJO_ID, KOMMO_SCOPE_ID  the connected account
//	KOMMO_BASE_URL                          both APIs at one URL (kommo fake)
const apiEnvHelp = `Environment: KOMMO_CHANNEL_ID, KOMMO_CHANNEL_SECRET, KOMMO_BASE_DOMAIN,
KOMMO_ACCESS_TOKEN, KOMMO_ACCOUNT_AMOJO_ID, KOMMO_SCOPE_ID; KOMMO_BASE_URL
points both APIs at one URL (what kommo fake --env-file writes).`

func init() {
	register(&command{name: "connect", summary: "connect the channel to an account and print the scope id",
		usage: "[--account AMOJO_ID] [--title TITLE] [--json]", run: runConnect,
		example: ". ./kommo.env\nkommo connect --title 'WhatsApp bridge'\n\n" + apiEnvHelp})
	register(&command{name: "send", summary: "send a client's text message to a chat",
		usage: "--chat CONVERSATION_ID --from CLIENT_ID --name NAME --text TEXT [--msgid ID] [--json]", run: runSend,
		example: "kommo send --chat order-42 --from client-7 --name 'Ann' --text 'Is my order ready?'\n\n" + apiEnvHelp})
	register(&command{name: "history", summary: "list a chat's messages (newest first), or follow new ones",
		usage: "--chat AMOJO_CHAT_ID [--limit N] [--all] [--follow [--interval D]] [--json]", run: runHistory,
		example: "kommo history --chat 5c3ab3b4-... --limit 20\nkommo history --chat 5c3ab3b4-... --all --json > chat.jsonl   # a progress bar on a terminal\nkommo history --chat 5c3ab3b4-... --follow\n\n" + apiEnvHelp})
	register(&command{name: "talk", summary: "get or close a talk (CRM)",
		usage: "get|close TALK_ID [--force] [--json]", run: runTalk,
		example: "kommo talk get 1001\nkommo talk close 1001 --force\n\n" + apiEnvHelp})
}

// apiFlags are the flags every API command has.
type apiFlags struct {
	json  *bool
	scope *string
}

func addAPIFlags(fs *flag.FlagSet) apiFlags {
	return apiFlags{
		json:  fs.Bool("json", false, "print JSON (one object per line) instead of a table"),
		scope: fs.String("scope", "", "scope `id` (default $KOMMO_SCOPE_ID, or the channel and $KOMMO_ACCOUNT_AMOJO_ID)"),
	}
}

// newClient builds a kommo.Client from the KOMMO_* variables.
func newClient(e *env) (*kommo.Client, error) {
	var opts []kommo.Option
	if id, secret := e.getenv("KOMMO_CHANNEL_ID"), e.getenv("KOMMO_CHANNEL_SECRET"); id != "" || secret != "" {
		opts = append(opts, kommo.WithChannel(id, secret))
	}
	if base := e.getenv("KOMMO_BASE_URL"); base != "" {
		opts = append(opts, kommo.WithChatBaseURL(base+"/"), kommo.WithCRMBaseURL(base+"/"))
	} else if d := e.getenv("KOMMO_BASE_DOMAIN"); d != "" {
		opts = append(opts, kommo.WithBaseDomain(d))
	}
	if tok := e.getenv("KOMMO_ACCESS_TOKEN"); tok != "" {
		opts = append(opts, kommo.WithAccessToken(tok))
	}
	opts = append(opts, kommo.WithAppInfo("kommo-cli", "dev", ""))
	return kommo.NewClient(opts...)
}

// chatClient is the Chat API client of the environment and the scope id
// of the flags or the environment.
func (f apiFlags) chatClient(e *env) (*kommo.Client, string, error) {
	client, err := newClient(e)
	if err != nil {
		return nil, "", err
	}
	scope, err := f.scopeID(e, client)
	if err != nil {
		return nil, "", err
	}
	return client, scope, nil
}

func (f apiFlags) scopeID(e *env, c *kommo.Client) (string, error) {
	if *f.scope != "" {
		return *f.scope, nil
	}
	if s := e.getenv("KOMMO_SCOPE_ID"); s != "" {
		return s, nil
	}
	if a := e.getenv("KOMMO_ACCOUNT_AMOJO_ID"); a != "" {
		return kommo.NewScopeID(c.ChannelID(), a)
	}
	return "", errors.New("no scope: pass --scope, or set KOMMO_SCOPE_ID or KOMMO_ACCOUNT_AMOJO_ID")
}

// printJSON writes v as one JSON line.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned rows.
func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func runConnect(e *env, args []string) error {
	c := commands["connect"]
	fs := c.flags(e)
	af := addAPIFlags(fs)
	account := fs.String("account", "", "the account's amojo `id` (default $KOMMO_ACCOUNT_AMOJO_ID)")
	title := fs.String("title", "", "the channel's `title` in the account")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	if *account == "" {
		*account = e.getenv("KOMMO_ACCOUNT_AMOJO_ID")
	}
	client, err := newClient(e)
	if err != nil {
		return err
	}
	conn, _, err := client.Channels.Connect(context.Background(), &kommo.ConnectRequest{AccountID: *account, Title: *title})
	if err != nil {
		return err
	}
	if *af.json {
		return printJSON(e.stdout, conn)
	}
	table(e.stdout, [][]string{{"SCOPE ID", "ACCOUNT", "TITLE", "HOOKS"}, {conn.ScopeID, conn.AccountID, conn.Title, conn.HookAPIVersion}})
	return nil
}

func runSend(e *env, args []string) error {
	c := commands["send"]
	fs := c.flags(e)
	af := addAPIFlags(fs)
	chat := fs.String("chat", "", "your conversation `id`")
	from := fs.String("from", "", "the client's `id` on your side")
	name := fs.String("name", "", "the client's display `name`")
	text := fs.String("text", "", "message `text`")
	msgid := fs.String("msgid", "", "your message `id` (default: generated)")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	client, scope, err := af.chatClient(e)
	if err != nil {
		return err
	}
	if *msgid == "" {
		*msgid = "cli-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	sent, _, err := client.Messages.Send(context.Background(), scope, &kommo.SendMessageRequest{
		MsgID: *msgid, ConversationID: *chat, Sender: &kommo.Participant{ID: *from, Name: *name},
		Message: kommo.TextMessage(*text)})
	if err != nil {
		return err
	}
	if *af.json {
		return printJSON(e.stdout, sent)
	}
	table(e.stdout, [][]string{{"AMOJO CHAT ID", "MESSAGE ID", "MSGID"}, {sent.ConversationID, sent.ID, sent.MsgID}})
	return nil
}

func historyRow(m *kommo.HistoryMessage) []string {
	who := ""
	if m.Sender != nil {
		who = m.Sender.Name
		if who == "" {
			who = m.Sender.ID
		}
	}
	text := m.Message.Text
	if text == "" {
		text = "[" + string(m.Message.Type) + "] " + m.Message.Media
	}
	return []string{m.Time().UTC().Format(time.DateTime), who, m.Message.ID, text}
}

func runHistory(e *env, args []string) error {
	c := commands["history"]
	fs := c.flags(e)
	af := addAPIFlags(fs)
	chat := fs.String("chat", "", "the chat's amojo `id` (not your conversation id)")
	limit := fs.Int("limit", 50, "page size, 1 to 50")
	all := fs.Bool("all", false, "page through the whole history (a progress bar on a terminal)")
	follow := fs.Bool("follow", false, "keep polling and print new messages as they arrive")
	interval := fs.Duration("interval", 2*time.Second, "poll `interval` for --follow")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	client, scope, err := af.chatClient(e)
	if err != nil {
		return err
	}
	ctx, stop := interruptContext()
	defer stop()
	emit := func(msgs []*kommo.HistoryMessage, header bool) error {
		if *af.json {
			for _, m := range msgs {
				if err := printJSON(e.stdout, m); err != nil {
					return err
				}
			}
			return nil
		}
		var rows [][]string
		if header {
			rows = append(rows, []string{"TIME (UTC)", "FROM", "MESSAGE ID", "TEXT"})
		}
		for _, m := range msgs {
			rows = append(rows, historyRow(m))
		}
		table(e.stdout, rows)
		return nil
	}
	if *all {
		bar := newProgress(e.stderr, "history")
		var msgs []*kommo.HistoryMessage
		for m, err := range client.History.All(ctx, scope, *chat, &kommo.HistoryOptions{Limit: *limit}) {
			if err != nil {
				bar.done()
				return err
			}
			msgs = append(msgs, m)
			bar.set(len(msgs))
		}
		bar.done()
		return emit(msgs, true)
	}
	msgs, _, err := client.History.List(ctx, scope, *chat, &kommo.HistoryOptions{Limit: *limit})
	if err != nil {
		return err
	}
	if err := emit(msgs, true); err != nil || !*follow {
		return err
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.Message.ID] = true
	}
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		page, _, err := client.History.List(ctx, scope, *chat, &kommo.HistoryOptions{Limit: *limit})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(e.stderr, "kommo history: %v (retrying)\n", err)
			continue
		}
		var fresh []*kommo.HistoryMessage
		for i := len(page) - 1; i >= 0; i-- { // oldest new message first
			if !seen[page[i].Message.ID] {
				seen[page[i].Message.ID] = true
				fresh = append(fresh, page[i])
			}
		}
		if err := emit(fresh, false); err != nil {
			return err
		}
	}
}

func runTalk(e *env, args []string) error {
	c := commands["talk"]
	fs := c.flags(e)
	af := addAPIFlags(fs)
	force := fs.Bool("force", false, "close: force_close (end it even if it is in work)")
	if len(args) > 0 && (args[0] == "get" || args[0] == "close") {
		sub := args[0]
		if err := c.parse(e, fs, args[1:]); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) != 1 {
			return errors.New("usage: kommo talk " + sub + " TALK_ID")
		}
		id, err := strconv.Atoi(rest[0])
		if err != nil || id <= 0 {
			return fmt.Errorf("talk id %q is not a positive number", rest[0])
		}
		client, err := newClient(e)
		if err != nil {
			return err
		}
		if sub == "close" {
			if _, err := client.Talks.Close(context.Background(), id, &kommo.CloseTalkRequest{ForceClose: *force}); err != nil {
				return err
			}
			if *af.json {
				return printJSON(e.stdout, map[string]any{"talk_id": id, "closed": true})
			}
			fmt.Fprintf(e.stdout, "talk %d closed\n", id)
			return nil
		}
		t, _, err := client.Talks.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, t)
		}
		table(e.stdout, [][]string{{"TALK", "CHAT", "CONTACT", "IN WORK", "READ", "UPDATED (UTC)"},
			{strconv.Itoa(t.ID), t.ChatID, strconv.Itoa(t.ContactID), strconv.FormatBool(t.IsInWork), strconv.FormatBool(t.IsRead),
				time.Unix(t.UpdatedAt, 0).UTC().Format(time.DateTime)}})
		return nil
	}
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	return errors.New("usage: kommo talk get|close TALK_ID")
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress draws a counter on a terminal; elsewhere it prints nothing.
type progress struct {
	w     io.Writer
	label string
	on    bool
	n     int
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, label: label, on: isTerminal(w)}
}

func (p *progress) set(n int) {
	p.n = n
	if p.on && (n < 10 || n%10 == 0) {
		width := min(n/10, 40)
		fmt.Fprintf(p.w, "\r%s [%-40s] %d messages", p.label, strings.Repeat("=", width), n)
	}
}

func (p *progress) done() {
	if p.on {
		fmt.Fprintf(p.w, "\r%s: %d messages%s\n", p.label, p.n, strings.Repeat(" ", 40))
	}
}
