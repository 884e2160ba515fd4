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
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

type config struct {
	file, state  string
	demoMessages int
	clientRPS    float64 // 0: no client-side throttling
	serverRPS    float64 // embedded mode: the server's rate limit (0: none)

	// Real-account mode; an empty channelID means embedded mode.
	channelID, channelSecret, botID string
	accountAmojoID                  string
	baseDomain, accessToken         string

	// server is the embedded fake to use; run starts one when it is nil.
	server *kommotest.Server
	// clientOptions are added to the client's options (tests use them).
	clientOptions []kommo.Option
}

func main() {
	cfg := config{
		channelID:      os.Getenv("KOMMO_CHANNEL_ID"),
		channelSecret:  os.Getenv("KOMMO_CHANNEL_SECRET"),
		botID:          os.Getenv("KOMMO_BOT_ID"),
		accountAmojoID: os.Getenv("KOMMO_ACCOUNT_AMOJO_ID"),
		baseDomain:     os.Getenv("KOMMO_BASE_DOMAIN"),
		accessToken:    os.Getenv("KOMMO_ACCESS_TOKEN"),
	}
	flag.StringVar(&cfg.file, "file", "", "JSON Lines file to import (embedded mode: a demo file when empty)")
	flag.StringVar(&cfg.state, "state", "", "state file of imported ids (default <file>.state)")
	flag.IntVar(&cfg.demoMessages, "demo-messages", 40, "size of the demo file")
	flag.Float64Var(&cfg.clientRPS, "client-rps", kommo.DefaultRateLimit, "client requests per second (0: unlimited)")
	flag.Float64Var(&cfg.serverRPS, "server-rps", 0, "embedded mode: the server's rate limit (0: none)")
	flag.Parse()
	if cfg.channelID != "" && (cfg.channelSecret == "" || cfg.botID == "" || cfg.file == "" ||
		(cfg.accountAmojoID == "" && (cfg.baseDomain == "" || cfg.accessToken == ""))) {
		fmt.Fprintln(os.Stderr, "import-history: real mode needs -file, KOMMO_CHANNEL_SECRET, KOMMO_BOT_ID and "+
			"KOMMO_ACCOUNT_AMOJO_ID (or KOMMO_BASE_DOMAIN and KOMMO_ACCESS_TOKEN)")
		os.Exit(2)
	}

	// Ctrl+C stops after the message in flight; run again to resume.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "import-history:", err)
		os.Exit(1)
	}
}

// record is one line of the input file.
type record struct {
	ID         string    `json:"id"`
	ChatID     string    `json:"chat_id"`
	From       string    `json:"from"` // "client" or "bot"
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name"`
	Text       string    `json:"text"`
	Time       time.Time `json:"time"`
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	srv := cfg.server
	if cfg.channelID == "" && srv == nil {
		srv = kommotest.NewServer(kommotest.WithRateLimit(cfg.serverRPS, max(1, int(cfg.serverRPS))))
		defer srv.Close()
	}
	client, scope, botID, err := connect(ctx, cfg, srv, stdout)
	if err != nil {
		return err
	}

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

// connect returns the client, the scope id to import into and the bot id.
func connect(ctx context.Context, cfg config, srv *kommotest.Server, stdout io.Writer) (*kommo.Client, string, string, error) {
	// The client waits between requests to stay under the rate; burst 1
	// spreads them evenly.
	opts := append([]kommo.Option{kommo.WithRateLimit(cfg.clientRPS, 1)}, cfg.clientOptions...)
	if srv != nil {
		fmt.Fprintf(stdout, "mode: embedded kommotest server at %s (set KOMMO_CHANNEL_ID to use a real account)\n", srv.URL())
		client, err := srv.Client(opts...)
		if err != nil {
			return nil, "", "", err
		}
		// The channel is connected as Channels.Connect would do it.
		return client, srv.Connect(srv.AccountAmojoID()), srv.BotID(), nil
	}

	opts = append(opts, kommo.WithChannel(cfg.channelID, cfg.channelSecret), kommo.WithAppInfo("kommo-import-history", kommo.Version, ""))
	if cfg.baseDomain != "" {
		opts = append(opts, kommo.WithBaseDomain(cfg.baseDomain), kommo.WithAccessToken(cfg.accessToken))
	}
	client, err := kommo.NewClient(opts...)
	if err != nil {
		return nil, "", "", err
	}
	amojoID := cfg.accountAmojoID
	if amojoID == "" {
		if amojoID, _, err = client.Account.AmojoID(ctx); err != nil {
			return nil, "", "", fmt.Errorf("get account amojo id: %w", err)
		}
	}
	fmt.Fprintf(stdout, "mode: real account %s\n", amojoID)
	return client, kommo.ScopeID(cfg.channelID, amojoID), cfg.botID, nil
}

// readRecords reads and checks the whole input file, reporting every bad
// line at once.
func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		recs []record
		errs []error
		seen = map[string]bool{}
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", path, n, err))
			continue
		}
		var problems []string
		for _, f := range []struct{ name, value string }{
			{"id", r.ID}, {"chat_id", r.ChatID}, {"client_id", r.ClientID}, {"client_name", r.ClientName}, {"text", r.Text},
		} {
			if f.value == "" {
				problems = append(problems, f.name+" is empty")
			}
		}
		if r.From != "client" && r.From != "bot" {
			problems = append(problems, `from must be "client" or "bot"`)
		}
		if r.Time.IsZero() {
			problems = append(problems, "time is missing")
		}
		if seen[r.ID] {
			problems = append(problems, "id "+r.ID+" is used twice")
		}
		seen[r.ID] = true
		if len(problems) > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: %s", path, n, strings.Join(problems, ", ")))
			continue
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return recs, errors.Join(errs...)
}

// stateFile is the append-only list of imported message ids, one a line.
type stateFile struct {
	f    *os.File
	done map[string]bool
}

func openState(path string) (*stateFile, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// A crash may have cut the last line short: keep whole lines only.
	whole := data[:bytes.LastIndexByte(data, '\n')+1]
	s := &stateFile{done: map[string]bool{}}
	for _, id := range strings.Split(string(whole), "\n") {
		if id != "" {
			s.done[id] = true
		}
	}
	if s.f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	if len(whole) < len(data) {
		if err := s.f.Truncate(int64(len(whole))); err != nil {
			s.f.Close()
			return nil, err
		}
	}
	if _, err := s.f.Seek(int64(len(whole)), io.SeekStart); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
}

// add records an imported id durably: at Kommo's 7 requests per second an
// fsync per message costs nothing noticeable.
func (s *stateFile) add(id string) error {
	if _, err := s.f.WriteString(id + "\n"); err != nil {
		return err
	}
	s.done[id] = true
	return s.f.Sync()
}

func (s *stateFile) Close() error { return s.f.Close() }

// progress draws "[#####.....] 20/40" on one terminal line.
type progress struct {
	w     io.Writer
	total int
	drawn bool
}

func (p *progress) update(n int) {
	const width = 30
	filled := width
	if p.total > 0 {
		filled = n * width / p.total
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, p.total)
	p.drawn = true
}

// done ends the bar's line so that other output starts on a new one.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// writeDemoFile writes n messages in four chats, alternating between the
// client and the bot, a minute apart.
func writeDemoFile(path string, n int) error {
	clients := []string{"Alice", "Bob", "Carol", "Dave"}
	texts := map[string][]string{
		"client": {"Hi, I ordered a blue jacket.", "When will it arrive?", "Can I change the size?", "Thanks!"},
		"bot":    {"Hello! Let me check your order.", "It ships tomorrow.", "Yes, which size do you need?", "You're welcome!"},
	}
	start := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := 0; i < n; i++ {
		chat, turn := i%len(clients), i/len(clients)
		from := "client"
		if turn%2 == 1 {
			from = "bot"
		}
		if err := enc.Encode(record{
			ID:         fmt.Sprintf("demo-msg-%03d", i+1),
			ChatID:     fmt.Sprintf("demo-chat-%d", chat+1),
			From:       from,
			ClientID:   fmt.Sprintf("demo-client-%d", chat+1),
			ClientName: clients[chat],
			Text:       texts[from][turn/2%len(texts[from])],
			Time:       start.Add(time.Duration(chat)*time.Hour + time.Duration(turn)*time.Minute),
		}); err != nil {
			return err
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
