package kommootel_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommootel"
)

// BenchmarkSend measures Messages.Send over loopback without an observer
// ("plain"), with kommootel on the OpenTelemetry SDK ("otel": every span
// sampled and ended into a span processor that keeps nothing, every metric
// aggregated for a ManualReader), with one trace in ten sampled
// ("otel-sampled-10pct"), and with the SDK's metrics but a no-op tracer
// ("otel-metrics-only"). BENCHMARKS.md reports the ratios.
func BenchmarkSend(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchSendWith(b) })
	b.Run("otel", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tp), kommootel.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		benchSendWith(b, obs.ClientOption())
	})
	b.Run("otel-sampled-10pct", func(b *testing.B) {
		// A production setting: one trace in ten sampled, metrics for all.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tp), kommootel.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		benchSendWith(b, obs.ClientOption())
	})
	b.Run("otel-metrics-only", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tracenoop.NewTracerProvider()), kommootel.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		benchSendWith(b, obs.ClientOption())
	})
}

// benchSendWith sends one message per iteration with a client built with
// opts.
func benchSendWith(b *testing.B, opts ...kommo.Option) {
	const scope = "344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81"
	resp := []byte(`{"new_message":{"conversation_id":"c2d6e2b6-0c47-4d4b-9c55-0f0b0b9d6a11","sender_id":"f1a2","receiver_id":null,"msgid":"7b0e5c2a-5d7f-4c59-8bcd-51c7a1b4b0f1","ref_id":"bench-msg"}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(resp)
	}))
	b.Cleanup(srv.Close)
	req := &kommo.SendMessageRequest{
		Time:           time.Date(2021, 12, 16, 13, 15, 29, 379_000_000, time.UTC),
		MsgID:          "bench-msg",
		ConversationID: "my_int-d5a421f7f218",
		Sender:         &kommo.Participant{ID: "my_int-1376265f-86df-4c49-a0c3-a4816df41af8", Name: "Client"},
		Message:        kommo.TextMessage("Hello from the benchmark"),
	}
	base := []kommo.Option{kommo.WithChannel("344a5002-f8ca-454d-af3d-396180102ac7", "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"),
		kommo.WithChatBaseURL(srv.URL), kommo.WithRateLimit(0, 0), kommo.WithHTTPClient(srv.Client())}
	c, err := kommo.NewClient(append(base, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if _, _, err := c.Messages.Send(ctx, scope, req); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time (client and in-process server together) is steadier than
	// wall time on a shared machine; it is 0 where it is not measured.
	if d := processCPU() - cpu; d > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// discardProcessor ends spans into nothing, as an exporter's batch
// processor would minus the export.
type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }
