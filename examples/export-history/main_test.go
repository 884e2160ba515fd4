package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

var testContext = demo.TestContext

func decodeLines(t *testing.T, data []byte) []*kommo.HistoryMessage {
	t.Helper()
	var out []*kommo.HistoryMessage
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m kommo.HistoryMessage
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %d: %s", len(out)+1, sc.Text())
		out = append(out, &m)
	}
	require.NoError(t, sc.Err())
	return out
}

// historyOffsets returns the offset of every history page request.
func historyOffsets(srv *kommotest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/history") {
			out = append(out, r.Query.Get("offset")+"/"+r.Query.Get("limit"))
		}
	}
	return out
}

func TestExportDemoChatToFile(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	out := filepath.Join(t.TempDir(), "chat.jsonl")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(testContext(t), config{out: out, demoMessages: 120, server: srv}, &stdout, &stderr), "stderr:\n%s", &stderr)
	assert.Empty(t, stdout.String(), "the data went to the file")

	chat, ok := srv.FindChat(srv.ScopeID(), "export-demo-chat")
	require.True(t, ok)
	q := regexp.QuoteMeta
	assert.Regexp(t, `^mode: embedded kommotest server at `+q(srv.URL())+` .*\n`+
		`demo: seeded chat `+q(chat.ID)+` with 120 messages\n`+
		`exported 120 messages of chat `+q(chat.ID)+` to `+q(out)+`\n$`, stderr.String())

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, 120, bytes.Count(data, []byte("\n")), "one line per message")
	msgs := decodeLines(t, data)
	require.Len(t, msgs, 120)

	// Newest first, as Kommo returns it.
	first, last := msgs[0], msgs[len(msgs)-1]
	assert.Equal(t, "message 120", first.Message.Text)
	assert.Equal(t, "export-demo-120", first.Message.ClientID)
	require.NotNil(t, first.Sender)
	assert.Equal(t, srv.BotID(), first.Sender.ID, "even messages are the bot's")
	require.NotNil(t, first.Receiver)
	assert.Equal(t, "export-demo-client", first.Receiver.ClientID)
	assert.Equal(t, time.Date(2024, 3, 1, 11, 0, 0, 0, time.UTC), first.Time().UTC())

	assert.Equal(t, "message 1", last.Message.Text)
	require.NotNil(t, last.Sender)
	assert.Equal(t, "Carol", last.Sender.Name)
	assert.Nil(t, last.Receiver, "incoming messages have no receiver")
	assert.Equal(t, time.Date(2024, 3, 1, 9, 1, 0, 0, time.UTC), last.Time().UTC())

	// Each message exactly once, and three pages of at most 50.
	seen := map[string]bool{}
	for _, m := range msgs {
		assert.False(t, seen[m.Message.ID], "duplicate %s", m.Message.ID)
		seen[m.Message.ID] = true
	}
	assert.Equal(t, []string{"0/50", "50/50", "100/50"}, historyOffsets(srv))

	matches, err := filepath.Glob(out + ".tmp-*")
	require.NoError(t, err)
	assert.Empty(t, matches, "no temporary file left")
}

func TestExportToStdout(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(testContext(t), config{demoMessages: 7, server: srv}, &stdout, &stderr), "stderr:\n%s", &stderr)
	msgs := decodeLines(t, stdout.Bytes())
	require.Len(t, msgs, 7)
	assert.Equal(t, "message 7", msgs[0].Message.Text)
	assert.Equal(t, "message 1", msgs[6].Message.Text)
	assert.Contains(t, stderr.String(), "exported 7 messages of chat ")
	assert.True(t, strings.HasSuffix(stderr.String(), " to stdout\n"))
	assert.Equal(t, []string{"0/50"}, historyOffsets(srv), "a short page ends the iteration")
}

func TestExportGivenChat(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	client := srv.MustClient()
	scope := srv.Connect(srv.AccountAmojoID())
	ctx := testContext(t)
	for i := 0; i < 50; i++ { // exactly one full page: All asks for a second one
		_, _, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{
			ConversationID: "existing-chat",
			Sender:         &kommo.Participant{ID: "u1", Name: "Dan"},
			Message:        kommo.TextMessage("hi"),
			Silent:         true,
		})
		require.NoError(t, err)
	}
	chat, ok := srv.FindChat(scope, "existing-chat")
	require.True(t, ok)
	srv.ResetRequests()

	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, config{chat: chat.ID, server: srv}, &stdout, &stderr), "stderr:\n%s", &stderr)
	assert.Len(t, decodeLines(t, stdout.Bytes()), 50)
	assert.NotContains(t, stderr.String(), "demo:")
	assert.Contains(t, stderr.String(), "exported 50 messages of chat "+chat.ID+" to stdout\n")
	assert.Equal(t, []string{"0/50", "50/50"}, historyOffsets(srv))
}

func TestExportFailureLeavesNoFile(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	scope := srv.Connect(srv.AccountAmojoID())
	_, _, err := srv.MustClient().Chats.Create(testContext(t), scope, &kommo.ChatCreateRequest{
		ConversationID: "c1", User: kommo.Participant{ID: "u1", Name: "Eve"},
	})
	require.NoError(t, err)
	chat, _ := srv.FindChat(scope, "c1")
	srv.FailNext(1, http.StatusForbidden, "") // never retried

	out := filepath.Join(t.TempDir(), "chat.jsonl")
	var stdout, stderr bytes.Buffer
	err = run(testContext(t), config{chat: chat.ID, out: out, server: srv}, &stdout, &stderr)
	require.ErrorIs(t, err, kommo.ErrForbidden)
	assert.Contains(t, err.Error(), "read history after 0 messages")
	entries, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	assert.Empty(t, entries, "neither the file nor its temporary copy exists")
}
