package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

var testContext = demo.TestContext

// demoFile writes a demo input of n messages into a temporary directory.
func demoFile(t *testing.T, n int) string {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	require.NoError(t, writeDemoFile(path, n))
	return path
}

// stdoutLines returns stdout without the variable elapsed-time line.
func stdoutLines(t *testing.T, stdout string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if strings.HasPrefix(l, "elapsed ") {
			assert.Regexp(t, `^elapsed \d[\d.]*[mµn]?s, \d+\.\d msgs/s$`, l)
			continue
		}
		if strings.HasPrefix(l, "mode: ") {
			assert.Contains(t, l, "mode: embedded kommotest server at http://127.0.0.1:")
			continue
		}
		out = append(out, l)
	}
	return out
}

// assertImported checks that the server holds each line of the file exactly
// once, with the right direction and silent flag.
func assertImported(t *testing.T, srv *kommotest.Server, file string) {
	t.Helper()
	recs, err := readRecords(file)
	require.NoError(t, err)
	newest := map[string]record{}
	for _, r := range recs {
		if r.Time.After(newest[r.ChatID].Time) {
			newest[r.ChatID] = r
		}
	}
	stored := srv.AllMessages()
	require.Len(t, stored, len(recs), "every line stored exactly once")
	byMsgID := map[string]kommotest.Message{}
	for _, m := range stored {
		byMsgID[m.MsgID] = m
	}
	require.Len(t, byMsgID, len(recs), "no msgid stored twice")
	for _, r := range recs {
		m, ok := byMsgID[r.ID]
		if !assert.True(t, ok, "message %s missing", r.ID) {
			continue
		}
		assert.Equal(t, r.ChatID, m.ConversationID)
		assert.Equal(t, r.Text, m.Text)
		assert.True(t, r.Time.Equal(m.Timestamp), "%s: time %s, want %s", r.ID, m.Timestamp, r.Time)
		assert.Equal(t, newest[r.ChatID].ID != r.ID, m.Silent, "%s: only the newest message of a chat is not silent", r.ID)
		if r.From == "bot" {
			assert.False(t, m.Incoming, r.ID)
			assert.Equal(t, srv.BotID(), m.Sender.ID, "%s: sent as the bot", r.ID)
			require.NotNil(t, m.Receiver, r.ID)
			assert.Equal(t, r.ClientID, m.Receiver.ClientID)
		} else {
			assert.True(t, m.Incoming, r.ID)
			assert.Equal(t, r.ClientID, m.Sender.ClientID)
			assert.Nil(t, m.Receiver)
		}
	}
}

func TestImportDemoFile(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	var stdout, stderr bytes.Buffer
	err := run(testContext(t), config{demoMessages: 12, server: srv}, &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", &stderr)

	lines := stdoutLines(t, stdout.String())
	require.Len(t, lines, 3, "stdout:\n%s", &stdout)
	assert.Regexp(t, `^demo: wrote 12 messages to .+history\.jsonl$`, lines[0])
	assert.Equal(t, "imported 12, skipped 0, failed 0", lines[1])
	assert.Equal(t, "kommotest: 12 messages stored, 0 answers were 429 Too Many Requests", lines[2])
	assert.True(t, strings.HasSuffix(stderr.String(), "\r[##############################] 12/12\n"), "progress bar: %q", &stderr)
	assert.Contains(t, stderr.String(), "\r[#######.......................] 3/12")
	assert.Len(t, srv.AllMessages(), 12)
	assert.Len(t, srv.Chats(), 4)
}

func TestImportResumesWithoutDuplicates(t *testing.T) {
	t.Parallel()
	const total, killAfter = 40, 17
	srv := kommotest.New(t)
	file := demoFile(t, total)

	// First run: "killed" right before the 18th request is sent.
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var calls atomic.Int32
	kill := kommo.WithMiddleware(func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		if calls.Add(1) > killAfter {
			cancel()
			return nil, ctx.Err()
		}
		return next(req)
	})
	var stdout, stderr bytes.Buffer
	err := run(ctx, config{file: file, server: srv, clientOptions: []kommo.Option{kill}}, &stdout, &stderr)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, []string{"interrupted: imported 17, skipped 0, failed 0; run again to resume"}, stdoutLines(t, stdout.String()))
	assert.Len(t, srv.AllMessages(), killAfter)
	state, err := os.ReadFile(file + ".state")
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSuffix(string(state), "\n"), "\n"), killAfter)

	// Second run: picks up where the first stopped.
	stdout.Reset()
	stderr.Reset()
	require.NoError(t, run(testContext(t), config{file: file, server: srv}, &stdout, &stderr), "stderr:\n%s", &stderr)
	assert.Equal(t, []string{
		"imported 23, skipped 17, failed 0",
		"kommotest: 40 messages stored, 0 answers were 429 Too Many Requests",
	}, stdoutLines(t, stdout.String()))
	assertImported(t, srv, file)

	// Third run: nothing left to do.
	stdout.Reset()
	require.NoError(t, run(testContext(t), config{file: file, server: srv}, &stdout, &stderr))
	assert.Equal(t, "imported 0, skipped 40, failed 0", stdoutLines(t, stdout.String())[0])

	// Losing the state file costs requests, not duplicates: Kommo keeps
	// one message per msgid.
	require.NoError(t, os.Remove(file+".state"))
	stdout.Reset()
	require.NoError(t, run(testContext(t), config{file: file, server: srv}, &stdout, &stderr))
	assert.Equal(t, "imported 40, skipped 0, failed 0", stdoutLines(t, stdout.String())[0])
	assertImported(t, srv, file)
}

func TestImportTornStateLine(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	file := demoFile(t, 5)
	// A crash in the middle of writing the third id.
	require.NoError(t, os.WriteFile(file+".state", []byte("demo-msg-001\ndemo-msg-002\ndemo-msg-0"), 0o644))

	var stdout, stderr bytes.Buffer
	require.NoError(t, run(testContext(t), config{file: file, server: srv}, &stdout, &stderr), "stderr:\n%s", &stderr)
	assert.Equal(t, "imported 3, skipped 2, failed 0", stdoutLines(t, stdout.String())[0])
	state, err := os.ReadFile(file + ".state")
	require.NoError(t, err)
	assert.Equal(t, "demo-msg-001\ndemo-msg-002\ndemo-msg-005\ndemo-msg-003\ndemo-msg-004\n", string(state),
		"the torn line is dropped; ids are recorded in send order (oldest first)")
}

func TestImportServerRateLimit(t *testing.T) {
	t.Parallel()
	// One request per second on the server and no client-side throttling:
	// the server answers 429 with Retry-After and the client waits and
	// retries, without duplicating a message.
	srv := kommotest.New(t, kommotest.WithRateLimit(1, 1))
	file := demoFile(t, 3)
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(testContext(t), config{file: file, server: srv, clientRPS: 0}, &stdout, &stderr), "stderr:\n%s", &stderr)

	lines := stdoutLines(t, stdout.String())
	require.Len(t, lines, 2)
	assert.Equal(t, "imported 3, skipped 0, failed 0", lines[0])
	assert.Regexp(t, `^kommotest: 3 messages stored, [1-9]\d* answers were 429 Too Many Requests$`, lines[1])
	assertImported(t, srv, file)
}

func TestImportReportsBadLinesAndFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte(
		`{"id":"a","chat_id":"c","from":"manager","client_id":"u","client_name":"U","text":"x","time":"2024-03-01T09:00:00Z"}`+"\n"+
			"\n"+
			`{"id":"b","chat_id":"c","from":"client","client_id":"u","client_name":"U","text":""}`+"\n"+
			`not json`+"\n"), 0o644))
	_, err := readRecords(bad)
	require.Error(t, err)
	for _, want := range []string{
		`bad.jsonl:1: from must be "client" or "bot"`,
		`bad.jsonl:3: text is empty, time is missing`,
		`bad.jsonl:4: invalid character`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	// A message Kommo rejects is counted as failed, not recorded, and the
	// import goes on.
	srv := kommotest.New(t)
	file := demoFile(t, 4)
	srv.FailNext(1, http.StatusBadRequest, "")
	var stdout, stderr bytes.Buffer
	err = run(testContext(t), config{file: file, server: srv}, &stdout, &stderr)
	require.EqualError(t, err, "1 messages failed")
	assert.Equal(t, "imported 3, skipped 0, failed 1", stdoutLines(t, stdout.String())[0])
	assert.Contains(t, stderr.String(), "message demo-msg-001: ")
	assert.Contains(t, stderr.String(), "400")

	// The rerun sends the failed message only.
	stdout.Reset()
	require.NoError(t, run(testContext(t), config{file: file, server: srv}, &stdout, &stderr))
	assert.Equal(t, "imported 1, skipped 3, failed 0", stdoutLines(t, stdout.String())[0])
	assertImported(t, srv, file)
}
