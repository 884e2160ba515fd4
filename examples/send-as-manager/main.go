// Command send-as-manager sends a message in a chat as a CRM manager: it
// finds the manager's amojo id through the Users API
// (GET /api/v4/users/{id}?with=amojo_id) and uses it as the message's
// sender.ref_id, then reacts to the client's message as that manager.
//
// By default it runs against an embedded kommotest server:
//
//	go run ./examples/send-as-manager
//
// Set KOMMO_CHANNEL_ID to run it against a real account (the channel must
// already be connected to it):
//
//	KOMMO_CHANNEL_ID        channel id from the channel registration (turns real mode on)
//	KOMMO_CHANNEL_SECRET    channel secret from the registration
//	KOMMO_BASE_DOMAIN       account domain, e.g. example.kommo.com
//	KOMMO_ACCESS_TOKEN      long-lived token of an administrator (the Users API needs one)
//	KOMMO_ACCOUNT_AMOJO_ID  optional; fetched with Account.AmojoID when unset
//	KOMMO_MANAGER_ID        optional; the CRM user to send as (default: the token's user)
//
// In real mode the client message creates an incoming lead in Unsorted; use
// a test account.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

// The chat this example uses; Chats.Create is idempotent on it.
const conversationID = "send-as-manager-chat-1"

type config struct {
	demo.Account
	managerID int
	server    *kommotest.Server // embedded fake (tests pass their own)
}

func main() {
	cfg := config{Account: demo.FromEnv()}
	if cfg.ChannelID != "" {
		if err := demo.RequireEnv("KOMMO_CHANNEL_ID", "KOMMO_CHANNEL_SECRET", "KOMMO_BASE_DOMAIN", "KOMMO_ACCESS_TOKEN"); err != nil {
			demo.Usage("send-as-manager", err.Error())
		}
	}
	if v := os.Getenv("KOMMO_MANAGER_ID"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			demo.Usage("send-as-manager", "KOMMO_MANAGER_ID: "+strconv.Quote(v)+" is not a positive number")
		}
		cfg.managerID = n
	}
	demo.Main("send-as-manager", func(ctx context.Context) error { return run(ctx, cfg, os.Stdout) })
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	sess, err := demo.Open(ctx, cfg.Account, demo.Options{App: "kommo-send-as-manager", Real: "account", Scope: true, Server: cfg.server}, w)
	if err != nil {
		return err
	}
	defer sess.Close()
	client := sess.Client

	// 1. The manager: the token's user unless one is given.
	managerID := cfg.managerID
	if managerID == 0 {
		acc, _, err := client.Account.Get(ctx, nil)
		if err != nil {
			return fmt.Errorf("account: %w", err)
		}
		managerID = acc.CurrentUserID
	}
	manager, _, err := client.Users.Get(ctx, managerID, nil) // with=amojo_id
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if manager.AmojoID == "" {
		return fmt.Errorf("user %d (%s) has no amojo id: %w", manager.ID, manager.Name, kommo.ErrNoAmojoID)
	}
	fmt.Fprintf(w, "manager: %d %s, amojo id %s\n", manager.ID, manager.Name, manager.AmojoID)

	// 2. A client message opens the chat.
	client1 := &kommo.Participant{ID: "send-as-manager-client-1", Name: "Alice"}
	in, _, err := client.Messages.Send(ctx, sess.ScopeID, &kommo.SendMessageRequest{
		ConversationID: conversationID,
		Sender:         client1,
		Message:        kommo.TextMessage("Hello, is my order ready?"),
	})
	if err != nil {
		return fmt.Errorf("client message: %w", err)
	}
	fmt.Fprintf(w, "client message: %s in chat %s\n", in.ID, in.ConversationID)

	// 3. The answer, sent as the manager: sender.ref_id is the amojo id.
	out, _, err := client.Messages.Send(ctx, sess.ScopeID, &kommo.SendMessageRequest{
		ConversationID: conversationID,
		Sender:         manager.Sender(),
		Receiver:       client1,
		Message:        kommo.TextMessage("Yes, it ships today."),
	})
	if err != nil {
		return fmt.Errorf("manager message: %w", err)
	}
	fmt.Fprintf(w, "manager message: %s\n", out.ID)

	// 4. The manager reacts to the client's message.
	_, err = client.Messages.React(ctx, sess.ScopeID, &kommo.ReactionRequest{
		ConversationID: conversationID, ID: in.ID, User: manager.ReactionUser(), Emoji: "👍",
	})
	if err != nil {
		return fmt.Errorf("reaction: %w", err)
	}
	fmt.Fprintln(w, "reaction: 👍 as", manager.Name)
	return nil
}
