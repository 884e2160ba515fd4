package kommo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

// hookProc is one running internal/hookproc process.
type hookProc struct {
	cmd    *exec.Cmd
	url    string // a handler's base URL
	record string
}

// startHookProc starts internal/hookproc in mode and waits for its first
// line ("listening URL" or "working").
func startHookProc(t *testing.T, bin, mode, redisAddr, record string) *hookProc {
	t.Helper()
	cmd := exec.Command(bin, "-mode", mode, "-redis", redisAddr, "-secret", hookTestSecret, "-record", record, "-lease", "1s")
	cmd.Stderr = &testkit.LogWriter{T: t, Prefix: mode + ": "}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &hookProc{cmd: cmd, record: record}
	t.Cleanup(func() { p.kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "%s did not start", mode)
	line = strings.TrimSpace(line)
	if u, ok := strings.CutPrefix(line, "listening "); ok {
		p.url = u
	} else {
		require.Equal(t, "working", line)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return p
}

// kill sends SIGKILL and reaps the process.
func (p *hookProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// proofMessage returns the text-message fixture with message id id.
func proofMessage(t *testing.T, base map[string]any, id string) []byte {
	t.Helper()
	msg := base["message"].(map[string]any)
	inner := msg["message"].(map[string]any)
	inner["id"] = id
	b, err := json.Marshal(base)
	require.NoError(t, err)
	return b
}

// readRecords counts the message ids in the record files, and the
// "ack-failed" and "fallback" lines: the deliveries that may run twice.
func readRecords(t *testing.T, files []string) (ids map[string]int, maybeTwice int) {
	t.Helper()
	ids = map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			switch {
			case line == "":
			case strings.HasPrefix(line, "ack-failed "), strings.HasPrefix(line, "fallback "):
				maybeTwice++
			default:
				ids[line]++
			}
		}
	}
	return ids, maybeTwice
}

// TestDurableIntakeSurvivesKills: signed webhooks posted to two handler
// processes on one Redis (appendonly, fsync always) while the worker
// process is killed with SIGKILL twice and Redis itself is killed and
// restarted once. Every webhook answered 200 reaches a callback; the only
// duplicates are deliveries in flight at a kill, and those whose
// acknowledgement failed or that ran inline while Redis was down. 2,000 webhooks with
// KOMMO_LONG_TESTS=1, 400 otherwise.
func TestDurableIntakeSurvivesKills(t *testing.T) {
	t.Parallel()
	n := 400
	if testkit.LongTests() {
		n = 2000
	}
	const concurrency = 4 // the worker's (hookproc's default)
	rs := testkit.StartRedis(t, true)
	bin := testkit.BuildHelper(t, "./internal/hookproc")
	dir := t.TempDir()
	var records []string
	record := func(name string) string {
		p := filepath.Join(dir, name)
		records = append(records, p)
		return p
	}
	handlers := []*hookProc{
		startHookProc(t, bin, "handler", rs.Addr(), record("handler1.log")),
		startHookProc(t, bin, "handler", rs.Addr(), record("handler2.log")),
	}
	worker := startHookProc(t, bin, "worker", rs.Addr(), record("worker1.log"))

	var base map[string]any
	require.NoError(t, json.Unmarshal(testkit.Fixture(t, "webhooks", "message_text.json"), &base))
	scope := kommo.ScopeID(hookTestChannel, hookTestAccount)

	var (
		posted   atomic.Int64
		mu       sync.Mutex
		answered = map[string]int{} // id → status
	)
	type hook struct {
		id   string
		body []byte
	}
	hooks := make(chan hook)
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range hooks {
				id, body := h.id, h.body
				req, err := http.NewRequest(http.MethodPost, handlers[g%2].url+"/kommo/"+scope, bytes.NewReader(body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Signature", kommo.SignWebhookBody(body, hookTestSecret))
				status := 0
				if resp, err := hc.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				answered[id] = status
				mu.Unlock()
				posted.Add(1)
			}
		}()
	}

	kills := 0
	for i := range n {
		switch i {
		case n / 3, 2 * n / 3: // kill the worker mid-run and start another
			worker.kill()
			kills++
			worker = startHookProc(t, bin, "worker", rs.Addr(), record(fmt.Sprintf("worker%d.log", kills+1)))
		case n / 2: // and Redis: the queue must keep what it acknowledged
			rs.Kill()
			rs.Start()
		}
		id := fmt.Sprintf("proof-%05d", i)
		hooks <- hook{id, proofMessage(t, base, id)} // built here: base is not shared
	}
	close(hooks)
	wg.Wait()

	mu.Lock()
	var ok []string
	others := map[int]int{}
	for id, st := range answered {
		if st == http.StatusOK {
			ok = append(ok, id)
		} else {
			others[st]++
		}
	}
	mu.Unlock()
	assert.Empty(t, others, "every webhook is answered 200 (queued, or run inline while Redis was down)")

	// Wait for the worker to drain the queue.
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]int
	var ackFailed int
	for {
		got, ackFailed = readRecords(t, records)
		missing := 0
		for _, id := range ok {
			if got[id] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			if missing > 0 { // say where they are
				rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
				ctx := context.Background()
				var miss []string
				for _, id := range ok {
					if got[id] == 0 {
						miss = append(miss, id)
					}
				}
				xl, _ := rdb.XLen(ctx, "kommo:{q:proof}:stream").Result()
				pend, _ := rdb.XPending(ctx, "kommo:{q:proof}:stream", "workers").Result()
				zc, _ := rdb.ZCard(ctx, "kommo:{q:proof}:delayed").Result()
				dl, _ := rdb.XLen(ctx, "kommo:{q:proof}:dead").Result()
				t.Logf("missing %v; the queue: stream %d, pending %+v, delayed %d, dead %d", miss, xl, pend, zc, dl)
			}
			require.Zero(t, missing, "webhooks answered 200 that never reached a callback")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	dups := 0
	for _, c := range got {
		dups += c - 1
	}
	t.Logf("%d webhooks, %d answered 200, %d reached a callback, %d duplicates (%d worker kills × %d in flight at most, %d failed acks or inline fallbacks), Redis killed once",
		n, len(ok), len(got), dups, kills, concurrency, ackFailed)
	assert.LessOrEqual(t, dups, kills*concurrency+ackFailed, "duplicates only for deliveries in flight at a kill or not acknowledged")
	assert.Len(t, got, n, "no other ids")
}
