package kommo_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

const benchSecret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"

// benchSendServer answers every request like Kommo's send endpoint.
func benchSendServer(b *testing.B) *httptest.Server {
	b.Helper()
	resp := []byte(`{"new_message":{"conversation_id":"c2d6e2b6-0c47-4d4b-9c55-0f0b0b9d6a11","sender_id":"f1a2","receiver_id":null,"msgid":"7b0e5c2a-5d7f-4c59-8bcd-51c7a1b4b0f1","ref_id":"bench-msg"}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// The baseline's hand-written request body.
type (
	benchSendBody struct {
		EventType string           `json:"event_type"`
		Payload   benchSendPayload `json:"payload"`
	}
	benchSendPayload struct {
		Timestamp      int64        `json:"timestamp"`
		MsecTimestamp  int64        `json:"msec_timestamp"`
		MsgID          string       `json:"msgid"`
		ConversationID string       `json:"conversation_id"`
		Sender         benchSender  `json:"sender"`
		Message        benchMessage `json:"message"`
		Silent         bool         `json:"silent"`
	}
	benchSender struct {
		ID      string       `json:"id"`
		Avatar  string       `json:"avatar"`
		Name    string       `json:"name"`
		Profile benchProfile `json:"profile"`
	}
	benchProfile struct {
		Phone string `json:"phone"`
		Email string `json:"email"`
	}
	benchMessage struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
)

// BenchmarkSendMessage compares Messages.Send with a hand-written net/http
// request carrying the same body and the same signing, over loopback.
func BenchmarkSendMessage(b *testing.B) {
	for _, v := range []struct {
		name string
		send func(*testing.B) func()
	}{{"sdk", benchSDKSend}, {"baseline", benchBaselineSend}} {
		b.Run(v.name, func(b *testing.B) {
			send := v.send(b)
			b.ReportAllocs()
			for b.Loop() {
				send()
			}
		})
	}
}

// BenchmarkSendMessagePaired compares the same two with testkit.Paired
// (alternating batches in one process), steadier than BenchmarkSendMessage
// on a machine whose speed drifts; "baseline" against itself is the
// control.
func BenchmarkSendMessagePaired(b *testing.B) {
	b.Run("sdk", func(b *testing.B) { testkit.Paired(b, benchBaselineSend(b), benchSDKSend(b)) })
	b.Run("baseline", func(b *testing.B) { testkit.Paired(b, benchBaselineSend(b), benchBaselineSend(b)) })
}

const benchScope = "344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81"

var benchAt = time.Date(2021, 12, 16, 13, 15, 29, 379_000_000, time.UTC)

// benchSDKSend returns a func that sends the benchmark's message with
// Messages.Send to a loopback server of its own.
func benchSDKSend(b *testing.B) func() {
	req := &kommo.SendMessageRequest{
		Time:           benchAt,
		MsgID:          "bench-msg",
		ConversationID: "my_int-d5a421f7f218",
		Sender: &kommo.Participant{
			ID: "my_int-1376265f-86df-4c49-a0c3-a4816df41af8", Name: "Client",
			Avatar:  "https://example.com/avatar.png",
			Profile: &kommo.ParticipantProfile{Phone: "+79151112233", Email: "example.client@example.com"},
		},
		Message: kommo.TextMessage("Hello from the benchmark"),
	}
	srv := benchSendServer(b)
	c, err := kommo.NewClient(kommo.WithChannel("344a5002-f8ca-454d-af3d-396180102ac7", benchSecret),
		kommo.WithChatBaseURL(srv.URL), kommo.WithRateLimit(0, 0), kommo.WithHTTPClient(srv.Client()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	return func() {
		if _, _, err := c.Messages.Send(ctx, benchScope, req); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBaselineSend returns a func that sends the same message as a
// careful hand-written client would: marshal its own structs, hash, sign,
// send, decode.
func benchBaselineSend(b *testing.B) func() {
	srv := benchSendServer(b)
	hc := srv.Client()
	target := srv.URL + "/v2/origin/custom/" + benchScope
	path := "/v2/origin/custom/" + benchScope
	ctx := context.Background()
	return func() {
		body, err := json.Marshal(&benchSendBody{EventType: "new_message", Payload: benchSendPayload{
			Timestamp: benchAt.Unix(), MsecTimestamp: benchAt.UnixMilli(), MsgID: "bench-msg",
			ConversationID: "my_int-d5a421f7f218",
			Sender: benchSender{ID: "my_int-1376265f-86df-4c49-a0c3-a4816df41af8", Name: "Client",
				Avatar:  "https://example.com/avatar.png",
				Profile: benchProfile{Phone: "+79151112233", Email: "example.client@example.com"}},
			Message: benchMessage{Type: "text", Text: "Hello from the benchmark"},
		}})
		if err != nil {
			b.Fatal(err)
		}
		sum := md5.Sum(body)
		md5hex := hex.EncodeToString(sum[:])
		date := time.Now().UTC().Format(time.RFC1123Z)
		mac := hmac.New(sha1.New, []byte(benchSecret))
		mac.Write([]byte("POST\n" + md5hex + "\napplication/json\n" + date + "\n" + path))
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		hr.Header.Set("Date", date)
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Content-MD5", md5hex)
		hr.Header.Set("X-Signature", hex.EncodeToString(mac.Sum(nil)))
		resp, err := hc.Do(hr)
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			NewMessage kommo.SentMessage `json:"new_message"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.StatusCode)
		}
	}
}

// BenchmarkParseWebhook compares ParseWebhookBody on a ~1.5 KiB message
// webhook with verify + json.Unmarshal into the same struct.
func BenchmarkParseWebhook(b *testing.B) {
	body := testkit.Fixture(b, "bench", "webhook_message.json")
	sig := kommo.SignWebhookBody(body, benchSecret)
	b.Logf("body: %d bytes", len(body))

	b.Run("sdk", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			ev, err := kommo.ParseWebhookBody(body, sig, benchSecret)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := ev.(*kommo.MessageEvent); !ok {
				b.Fatalf("got %T", ev)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if !kommo.VerifyWebhookSignature(body, sig, benchSecret) {
				b.Fatal("bad signature")
			}
			var ev kommo.MessageEvent
			if err := json.Unmarshal(body, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchHistoryChat seeds a kommotest chat with n messages and returns the
// server, a client and the chat's scope and amojo id.
func benchHistoryChat(b *testing.B, n int) (*kommotest.Server, *kommo.Client, string, string) {
	b.Helper()
	srv := kommotest.NewServer()
	b.Cleanup(srv.Close)
	c, err := srv.Client(kommo.WithRetryPolicy(kommo.NoRetries()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	scope := srv.Connect(srv.AccountAmojoID())
	chat, _, err := c.Chats.Create(ctx, scope, &kommo.CreateChatRequest{
		ConversationID: "bench-history", User: kommo.Participant{ID: "bench-client", Name: "Bench Client"},
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				_, _, err := c.Messages.Send(ctx, scope, &kommo.SendMessageRequest{
					Time: start.Add(time.Duration(i) * time.Second), MsgID: fmt.Sprintf("bench-%06d", i),
					ConversationID: "bench-history", Silent: true,
					Sender:  &kommo.Participant{ID: "bench-client", Name: "Bench Client"},
					Message: kommo.TextMessage(fmt.Sprintf("history message number %d with some text", i)),
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	srv.ResetRequests()
	return srv, c, scope, chat.ID
}

// BenchmarkHistoryAll walks a whole chat history with History.All (50
// messages a page) from kommotest. It reports bytes allocated per message
// (client and in-process fake server together) and peak-live-B: the largest
// growth of the live heap (measured after a GC at every page boundary)
// during one walk. The peak must not grow with the number of messages:
// compare n=1000 with n=10000.
func BenchmarkHistoryAll(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			srv, c, scope, chat := benchHistoryChat(b, n)
			ctx := context.Background()
			walk := func(atPage func()) {
				count := 0
				for _, err := range c.History.All(ctx, scope, chat, nil) {
					if err != nil {
						b.Fatal(err)
					}
					count++
					if atPage != nil && count%kommo.HistoryMaxLimit == 0 {
						atPage()
					}
				}
				if count != n {
					b.Fatalf("walked %d messages, want %d", count, n)
				}
			}

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				walk(nil)
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(n), "B/msg")

			// One more walk, outside the timing, with a GC at every page. The
			// fake server's request log is cleared each time so that only
			// what the walk itself keeps alive is measured.
			live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
			srv.ResetRequests()
			runtime.GC()
			metrics.Read(live)
			base, peak := live[0].Value.Uint64(), uint64(0)
			walk(func() {
				srv.ResetRequests()
				runtime.GC()
				metrics.Read(live)
				if h := live[0].Value.Uint64(); h > base {
					peak = max(peak, h-base)
				}
			})
			b.ReportMetric(float64(peak), "peak-live-B")
		})
	}
}

// BenchmarkHistoryDecodeOnly walks 10,000 messages served as canned pages
// (rendered once from kommotest) by a minimal handler, so that B/msg is
// the client's own cost: HTTP, signing and decoding.
func BenchmarkHistoryDecodeOnly(b *testing.B) {
	const n = 10000
	srv, c, scope, chat := benchHistoryChat(b, n)
	ctx := context.Background()
	pages := make(map[string][]byte)
	for off := 0; off < n; off += kommo.HistoryMaxLimit {
		msgs, _, err := c.History.List(ctx, scope, chat, &kommo.HistoryOptions{Offset: off, Limit: kommo.HistoryMaxLimit})
		if err != nil {
			b.Fatal(err)
		}
		page, err := json.Marshal(map[string]any{"messages": msgs})
		if err != nil {
			b.Fatal(err)
		}
		pages[fmt.Sprint(off)] = page
	}
	srv.Close()
	canned := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Query().Get("offset")]
		if !ok {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Write(page)
	}))
	b.Cleanup(canned.Close)
	cc, err := kommo.NewClient(kommo.WithChannel(srv.ChannelID(), srv.ChannelSecret()), kommo.WithChatBaseURL(canned.URL),
		kommo.WithHTTPClient(canned.Client()), kommo.WithRateLimit(0, 0))
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		count := 0
		for _, err := range cc.History.All(ctx, scope, chat, nil) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		if count != n {
			b.Fatalf("walked %d, want %d", count, n)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/n, "B/msg")
}
