package kommootel_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommootel"
)

// benchVariant is one way of instrumenting the benchmarked client.
type benchVariant struct {
	name string
	opts func(b *testing.B) []kommo.Option
}

// benchVariants are the instrumentations compared: none ("plain"),
// kommootel on the OpenTelemetry SDK ("otel": every span sampled and ended
// into a span processor that keeps nothing, every metric aggregated for a
// ManualReader), with one trace in ten sampled ("otel-sampled-10pct"),
// with the SDK's metrics but a no-op tracer ("otel-metrics-only"), an
// Observer whose hooks do nothing ("noop-observer": the client's own cost
// of calling hooks), one whose AttemptDone only keeps the CPU busy for 1 µs
// ("busy-1us": what one microsecond of work per send costs in this
// benchmark, its calibration), and no kommootel at all but an Observer that starts
// and ends the same two SDK spans per send without an attribute or a
// metric ("sdk-spans-only": the OpenTelemetry SDK's own floor for two
// recorded spans).
var benchVariants = []benchVariant{
	{"plain", func(*testing.B) []kommo.Option { return nil }},
	{"otel", func(b *testing.B) []kommo.Option {
		return benchObserver(b, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{})))
	}},
	{"otel-sampled-10pct", func(b *testing.B) []kommo.Option {
		// A production setting: one trace in ten sampled, metrics for all.
		return benchObserver(b, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1)))))
	}},
	{"otel-metrics-only", func(b *testing.B) []kommo.Option {
		return benchObserver(b, tracenoop.NewTracerProvider())
	}},
	{"noop-observer", func(*testing.B) []kommo.Option {
		return []kommo.Option{kommo.WithObserver(&kommo.Observer{
			CallStart:    func(ctx context.Context, _ kommo.CallInfo) context.Context { return ctx },
			CallDone:     func(context.Context, kommo.CallDone) {},
			AttemptStart: func(ctx context.Context, _ kommo.AttemptStart) context.Context { return ctx },
			AttemptDone:  func(context.Context, kommo.AttemptDone) {},
		})}
	}},
	{"busy-1us", func(*testing.B) []kommo.Option {
		return []kommo.Option{kommo.WithObserver(&kommo.Observer{
			AttemptDone: func(context.Context, kommo.AttemptDone) { busy(time.Microsecond) },
		})}
	}},
	{"sdk-spans-only", func(*testing.B) []kommo.Option {
		tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{})).Tracer("floor")
		start := func(ctx context.Context, name string) context.Context {
			ctx, _ = tr.Start(ctx, name)
			return ctx
		}
		end := func(ctx context.Context) { trace.SpanFromContext(ctx).End() }
		return []kommo.Option{kommo.WithObserver(&kommo.Observer{
			CallStart:    func(ctx context.Context, info kommo.CallInfo) context.Context { return start(ctx, info.Operation) },
			CallDone:     func(ctx context.Context, _ kommo.CallDone) { end(ctx) },
			AttemptStart: func(ctx context.Context, ev kommo.AttemptStart) context.Context { return start(ctx, ev.Method) },
			AttemptDone:  func(ctx context.Context, _ kommo.AttemptDone) { end(ctx) },
		})}
	}},
}

// busy keeps the CPU busy for d.
func busy(d time.Duration) {
	for t0 := time.Now(); time.Since(t0) < d; {
	}
}

// BenchmarkHooks measures kommootel's hooks alone, without a request: the
// four a successful single-attempt send calls (CallStart, AttemptStart,
// AttemptDone, CallDone), with the call recorded ("recorded": every span
// sampled), not sampled ("unsampled"), and with a no-op tracer
// ("metrics-only"). Metrics go to the SDK in all three.
func BenchmarkHooks(b *testing.B) {
	tracers := []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"recorded", sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))},
		{"unsampled", sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}), sdktrace.WithSampler(sdktrace.NeverSample()))},
		{"metrics-only", tracenoop.NewTracerProvider()},
	}
	info := kommo.CallInfo{Operation: "Messages.Send", API: kommo.APIChat, AccountKey: benchScope}
	u, err := url.Parse("http://127.0.0.1:34567/v2/origin/custom/" + benchScope)
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range tracers {
		b.Run(tr.name, func(b *testing.B) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tr.tp), kommootel.WithMeterProvider(mp))
			if err != nil {
				b.Fatal(err)
			}
			h := obs.Hooks()
			start := kommo.AttemptStart{Info: info, Attempt: 1, Method: http.MethodPost, URL: u}
			b.ReportAllocs()
			for b.Loop() {
				ctx := h.CallStart(context.Background(), info)
				actx := h.AttemptStart(ctx, start)
				h.AttemptDone(actx, kommo.AttemptDone{AttemptStart: start, StatusCode: http.StatusOK, Duration: time.Millisecond})
				h.CallDone(ctx, kommo.CallDone{Info: info, Method: http.MethodPost, Attempts: 1, StatusCode: http.StatusOK, Duration: time.Millisecond})
			}
		})
	}
}

// benchObserver is kommootel on tp and an SDK MeterProvider read by a
// ManualReader.
func benchObserver(b *testing.B, tp trace.TracerProvider) []kommo.Option {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tp), kommootel.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	return []kommo.Option{obs.ClientOption()}
}

// BenchmarkSend measures Messages.Send over loopback with each of
// benchVariants. BENCHMARKS.md reports the ratios.
func BenchmarkSend(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			send := benchSender(b, v.opts(b)...)
			b.ReportAllocs()
			cpu := testkit.ProcessCPU()
			for b.Loop() {
				send()
			}
			// CPU time (client and in-process server together) is steadier
			// than wall time on a shared machine; it is 0 where it is not
			// measured.
			if d := testkit.ProcessCPU() - cpu; d > 0 {
				b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkSendPaired compares each variant with "plain" with
// testkit.Paired: alternating batches in one process; "plain" against
// itself is the control, whose ratio shows the measurement's own error.
func BenchmarkSendPaired(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			testkit.Paired(b, benchSender(b), benchSender(b, v.opts(b)...))
		})
	}
}

// benchScope is the scope id the benchmarks send to.
const benchScope = "344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81"

// benchSender returns a func that sends one message with a client built
// with opts, to a loopback server of its own.
func benchSender(b *testing.B, opts ...kommo.Option) func() {
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
	return func() {
		if _, _, err := c.Messages.Send(ctx, benchScope, req); err != nil {
			b.Fatal(err)
		}
	}
}

// discardProcessor ends spans into nothing, as an exporter's batch
// processor would minus the export.
type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }
