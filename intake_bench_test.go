package kommo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommoredis"
)

// BenchmarkWebhookIntakeRedis: the handler with the Redis queue answering
// signed webhooks posted at 500 per second (one every 2 ms, each on its own
// connection goroutine), as Kommo would post them for many accounts at
// once. It reports the answer time's median and 99th percentile; run it
// with -benchtime=5000x for 10 s of traffic.
func BenchmarkWebhookIntakeRedis(b *testing.B) {
	rs := testkit.StartRedis(b, true)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = rdb.Close() })
	q, err := kommoredis.NewWebhookQueue(rdb, "bench")
	if err != nil {
		b.Fatal(err)
	}
	h, err := kommo.NewWebhookHandler(hookTestSecret, func(context.Context, kommo.WebhookEvent) error { return nil },
		kommo.WithWebhookQueue(q))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	url := srv.URL + "/kommo/" + kommo.ScopeID(hookTestChannel, hookTestAccount)
	var base map[string]any
	if err := json.Unmarshal(testkit.Fixture(b, "webhooks", "message_text.json"), &base); err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		base["message"].(map[string]any)["message"].(map[string]any)["id"] = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		bodies[i], _ = json.Marshal(base)
	}
	hc := srv.Client()
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 256

	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed sync.Map
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
			req.Header.Set("X-Signature", kommo.SignWebhookBody(bodies[i], hookTestSecret))
			start := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				failed.Store(i, err.Error())
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			lat[i] = time.Since(start)
			if resp.StatusCode != http.StatusOK {
				failed.Store(i, resp.Status)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	failed.Range(func(k, v any) bool { b.Fatalf("webhook %v: %v", k, v); return false })
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
