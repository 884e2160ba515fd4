package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

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
