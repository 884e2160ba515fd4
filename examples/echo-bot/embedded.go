package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// In embedded mode kommotest plays Kommo, its manager and a client, in the
// chat demoConversation.
const demoConversation = "echo-demo-chat"

// playManager plays Kommo: a client opens a chat, then a manager writes n
// messages in it, each posted to the bot as a signed hook. It returns once
// every echo is stored and every message is marked delivered.
func playManager(ctx context.Context, client *kommo.Client, srv *kommotest.Server, hookURL string, n int) error {
	scope := srv.Connect(srv.AccountAmojoID()) // as Channels.Connect would
	_, _, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{
		ConversationID: demoConversation,
		Sender:         &kommo.Participant{ID: "echo-demo-client", Name: "Bob"},
		Message:        kommo.TextMessage("Hello, is anyone there?"),
	})
	if err != nil {
		return fmt.Errorf("demo client message: %w", err)
	}
	for i := 1; i <= n; i++ {
		ev := kommotest.ManagerMessage(demoConversation, fmt.Sprintf("Hello #%d", i))
		if err := srv.DeliverWebhook(ctx, hookURL, ev); err != nil {
			return fmt.Errorf("deliver hook %d: %w", i, err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		echoes, delivered := demoCounts(srv, srv.BotID())
		if echoes >= n && delivered >= n {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d echoes (have %d, %d delivered): %w", n, echoes, delivered, ctx.Err())
		}
	}
}

// demoCounts counts the bot's echoes and the manager messages marked
// delivered in the demo chat.
func demoCounts(srv *kommotest.Server, botID string) (echoes, delivered int) {
	for _, m := range srv.Messages(srv.ScopeID(), demoConversation) {
		switch {
		case m.Sender.ID == botID:
			echoes++
		case m.FromKommo && m.DeliveryStatus == kommo.DeliveryStatusDelivered:
			delivered++
		}
	}
	return echoes, delivered
}

// checkDemo prints what the fake server holds once the bot has stopped.
func checkDemo(srv *kommotest.Server, botID string, n int, stdout io.Writer) error {
	echoes, delivered := demoCounts(srv, botID)
	fmt.Fprintf(stdout, "kommotest: %d echoes stored, %d manager messages delivered\n", echoes, delivered)
	if echoes != n || delivered != n {
		return fmt.Errorf("want %d echoes and %d delivered messages", n, n)
	}
	return nil
}
