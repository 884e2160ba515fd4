// Command observability runs a short conversation against an embedded
// kommotest server with the kommootel observer wired in, and prints the
// spans and metrics it produced (OpenTelemetry stdout exporters):
//
//	go run ./examples/observability
//
// The conversation: create a chat, send a client message that the server
// first answers 429 (so the send is retried), receive the manager's reply
// through a signed webhook and mark it read. The spans show one call span
// per operation with an HTTP client span per attempt; the metrics count
// requests by status class, retries by reason, 429s, limiter waits, the
// webhook and its lag and the handler's latency, all per account.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommootel"
	"github.com/kommo-go/kommo/kommotest"
)

const conversationID = "observability-chat-1"

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

// run holds the conversation and writes the steps, then the spans and
// metrics as JSON, to out.
func run(ctx context.Context, out io.Writer) error {
	var spans bytes.Buffer // printed after the steps
	spanExp, err := stdouttrace.New(stdouttrace.WithWriter(&spans), stdouttrace.WithPrettyPrint())
	if err != nil {
		return err
	}
	metricExp, err := stdoutmetric.New(stdoutmetric.WithWriter(out), stdoutmetric.WithPrettyPrint())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spanExp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	obs, err := kommootel.NewObserver(kommootel.WithTracerProvider(tp), kommootel.WithMeterProvider(mp))
	if err != nil {
		return err
	}

	srv := kommotest.NewServer()
	defer srv.Close()
	scope := srv.Connect(srv.AccountAmojoID())
	client, err := srv.Client(obs.ClientOption(),
		kommo.WithRateLimit(kommo.DefaultRateLimit, 1),
		kommo.WithRetryPolicy(kommo.RetryPolicy{MaxAttempts: 3, BaseBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}))
	if err != nil {
		return err
	}

	client1 := kommo.Participant{ID: "client-1", Name: "Ada"}
	chat, _, err := client.Chats.Create(ctx, scope, &kommo.CreateChatRequest{ConversationID: conversationID, User: client1})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "1. created chat %s\n", chat.ID)

	srv.FailNext(1, http.StatusTooManyRequests, "")
	_, resp, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{
		ConversationID: conversationID, Sender: &client1, Message: kommo.TextMessage("Hello, is my order ready?")})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. sent a message: %s on %s took %d attempts\n", resp.Call.Operation, resp.Call.AccountKey, resp.Attempts)

	var reply *kommo.MessageEvent
	hooks, err := kommo.NewWebhookHandler(srv.ChannelSecret(), func(_ context.Context, ev kommo.WebhookEvent) error {
		reply, _ = ev.(*kommo.MessageEvent)
		return nil
	}, obs.WebhookOption())
	if err != nil {
		return err
	}
	req, err := srv.NewWebhookRequest(ctx, "http://127.0.0.1/kommo/:scope_id", kommotest.ManagerMessage(conversationID, "Yes, it ships today."))
	if err != nil {
		return err
	}
	w := httptest.NewRecorder()
	hooks.ServeHTTP(w, req)
	if reply == nil {
		return fmt.Errorf("webhook answered %d without a message", w.Code)
	}
	fmt.Fprintf(out, "3. received the manager's reply: webhook answered %d\n", w.Code)

	if _, err := client.Messages.UpdateDeliveryStatus(ctx, scope, reply.Message.ID,
		&kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusRead}); err != nil {
		return err
	}
	fmt.Fprintln(out, "4. marked it read")

	if err := tp.Shutdown(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nSpans:")
	if _, err := spans.WriteTo(out); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nMetrics:")
	return exportMetrics(ctx, reader, metricExp)
}

func exportMetrics(ctx context.Context, reader *sdkmetric.ManualReader, exp sdkmetric.Exporter) error {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	return exp.Export(ctx, &rm)
}
