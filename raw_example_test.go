package kommo_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// Kommo's step-by-step flow creates a contact for a new chat and links the
// chat to it. The SDK has no contacts service; Client.Call reaches
// POST /api/v4/contacts with the client's token, limiter, retries and
// error mapping.
func ExampleClient_Call() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	chat, _, err := client.Chats.Create(ctx, scopeID, &kommo.CreateChatRequest{
		ConversationID: "chat-1",
		User:           kommo.Participant{ID: "client-1", Name: "Alice"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	var created struct {
		Embedded struct {
			Contacts []struct {
				ID int `json:"id"`
			} `json:"contacts"`
		} `json:"_embedded"`
	}
	_, err = client.Call(ctx, http.MethodPost, "api/v4/contacts", nil,
		[]map[string]any{{"name": "Alice"}}, &created)
	if err != nil {
		fmt.Println(err)
		return
	}
	contactID := created.Embedded.Contacts[0].ID

	links, _, err := client.ContactsChats.Link(ctx, []*kommo.ContactChatLink{{ContactID: contactID, ChatID: chat.ID}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(links[0].ContactID == contactID, links[0].ChatID == chat.ID)
	linked, _ := srv.ContactForChat(chat.ID)
	fmt.Println(linked == contactID)
	// Output:
	// true true
	// true
}
