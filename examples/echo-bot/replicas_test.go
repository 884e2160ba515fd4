package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

// replica is one echo-bot process in real mode against the fake.
type replica struct {
	cmd *exec.Cmd
	url string // its webhook URL template (…/kommo/:scope_id)
}

func startReplica(t *testing.T, bin string, srv *kommotest.Server, redisAddr string) *replica {
	t.Helper()
	cmd := exec.Command(bin, "-redis", "redis://"+redisAddr+"/0", "-lease", "2s")
	cmd.Env = append(os.Environ(),
		"KOMMO_CHANNEL_ID="+srv.ChannelID(), "KOMMO_CHANNEL_SECRET="+srv.ChannelSecret(), "KOMMO_BOT_ID="+srv.BotID(),
		"KOMMO_WEBHOOK_ADDR=127.0.0.1:0", "KOMMO_CHAT_BASE_URL="+srv.URL()+"/")
	stderr := &testkit.LogWriter{T: t, Prefix: "replica: "}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	r := &replica{cmd: cmd}
	t.Cleanup(func() { r.kill(); _ = stderr.Close() })
	lines := bufio.NewReader(out)
	for r.url == "" {
		line, err := lines.ReadString('\n')
		require.NoError(t, err, "the replica did not start")
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "listening for webhooks on "); ok {
			r.url = u
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return r
}

func (r *replica) kill() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		_ = r.cmd.Wait()
	}
}

// Two replicas of the bot share a queue and the rate limits in Redis; one
// is killed with SIGKILL right after it answered 200 to half the hooks,
// before echoing them. Every manager message is still echoed exactly once
// and marked delivered: what the dead replica had queued is in Redis, and
// what it was working on goes to the other replica after the lease. (With
// the in-memory queue the hooks A took die with it.)
func TestEchoBotReplicasSurviveAKill(t *testing.T) {
	t.Parallel()
	const n = 16 // 2 calls each through the shared 7 rps limit of the one scope: about 5 s
	rs := testkit.StartRedis(t, true)
	bin := testkit.BuildHelper(t, ".")
	srv := kommotest.New(t)
	scope := srv.Connect(srv.AccountAmojoID())
	ctx := testkit.Context(t)
	_, _, err := srv.MustClient().Messages.Send(ctx, scope, &kommo.SendMessageRequest{
		ConversationID: demoConversation,
		Sender:         &kommo.Participant{ID: "echo-demo-client", Name: "Bob"},
		Message:        kommo.TextMessage("Hello, is anyone there?"),
	})
	require.NoError(t, err)

	a := startReplica(t, bin, srv, rs.Addr())
	b := startReplica(t, bin, srv, rs.Addr())
	deliver := func(r *replica, from, to int) {
		for i := from; i <= to; i++ {
			ev := kommotest.ManagerMessage(demoConversation, fmt.Sprintf("Hello #%d", i))
			require.NoError(t, srv.DeliverWebhook(ctx, r.url, ev), "hook %d", i)
		}
	}
	// The next API call (the first one a worker makes for these hooks)
	// hangs, so a replica is busy with a hook when A dies.
	srv.StallNext(1, 3*time.Second)
	deliver(a, 1, n/2) // answered 200 by A: in the queue, not yet echoed
	a.kill()
	deliver(b, n/2+1, n)

	require.Eventually(t, func() bool {
		echoes, delivered := demoCounts(srv, srv.BotID())
		return echoes >= n && delivered >= n
	}, 30*time.Second, 20*time.Millisecond, "every message echoed and marked delivered")
	echoes := map[string]int{}
	for _, m := range srv.Messages(scope, demoConversation) {
		if m.Sender.ID == srv.BotID() {
			echoes[m.Text]++
		}
	}
	for i := 1; i <= n; i++ {
		assert.Equal(t, 1, echoes[fmt.Sprintf("echo: Hello #%d", i)], "message %d echoed once", i)
	}
	assert.Len(t, echoes, n)
}
