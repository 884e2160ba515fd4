package kommo_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// Learning talk ids: the Chat API never returns them, so subscribe to
// add_talk and read the chat and talk ids from the CRM webhook.
func ExampleCRMWebhookHandler() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	talkOfChat := map[string]int{} // amojo chat id → talk id
	hooks := httptest.NewServer(kommo.CRMWebhookHandler(func(ctx context.Context, h *kommo.CRMWebhook) error {
		for _, ev := range h.Events {
			if t, ok := ev.(*kommo.CRMTalkEvent); ok {
				talkOfChat[t.ChatID] = t.TalkID
			}
		}
		return nil
	}, nil))
	defer hooks.Close()

	_, _, err := client.CRMWebhooks.Subscribe(ctx, &kommo.CRMWebhookSubscribeRequest{
		Destination: hooks.URL + "/kommo/crm/unguessable-token",
		Settings:    []string{kommo.CRMEventAddTalk, kommo.CRMEventUpdateTalk},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// A client writes: Kommo opens a talk and sends add_talk.
	sent, _, err := client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
		ConversationID: "chat-1",
		Sender:         &kommo.Participant{ID: "client-1", Name: "Alice"},
		Message:        kommo.TextMessage("Hi!"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv.WaitCRMWebhooks() // the fake delivers in the background

	talkID := talkOfChat[sent.ConversationID]
	talk, _, err := client.Talks.Get(ctx, talkID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(talk.ID == talkID, talk.IsInWork)
	// Output:
	// true true
}
