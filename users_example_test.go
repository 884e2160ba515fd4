package kommo_test

import (
	"context"
	"fmt"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// Sending as a manager: the message's sender.ref_id is the manager's
// amojo id, which only the Users API gives.
func ExampleUsersService_Get() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()
	ctx := context.Background()
	scopeID := srv.Connect(srv.AccountAmojoID())

	acc, _, err := client.Account.Get(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	manager, _, err := client.Users.Get(ctx, acc.CurrentUserID, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(manager.Name, manager.AmojoID)

	_, _, err = client.Messages.Send(ctx, scopeID, &kommo.SendMessageRequest{
		ConversationID: "chat-1",
		Sender:         manager.Sender(), // ref_id = the manager's amojo id
		Receiver:       &kommo.Participant{ID: "client-1", Name: "Alice"},
		Message:        kommo.TextMessage("Your order is ready"),
	})
	fmt.Println(err)
	m := srv.Messages(scopeID, "chat-1")[0]
	fmt.Println(m.Text, "| incoming:", m.Incoming)
	// Output:
	// Manager 76fc2bea-902f-425c-9a3d-dcdac4766090
	// <nil>
	// Your order is ready | incoming: false
}

func ExampleUsersService_All() {
	srv := kommotest.NewServer()
	defer srv.Close()
	srv.AddUser("Bob", "bob@example.com", "a8a6b1a4-5d0e-4f4c-9a59-0c1d7c2b6f11")
	srv.AddUser("Carol", "carol@example.com", "") // never used chats: no amojo id
	client := srv.MustClient()

	for u, err := range client.Users.All(context.Background(), &kommo.UserListOptions{Limit: 2}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d %s %q\n", u.ID, u.Name, u.AmojoID)
	}
	// Output:
	// 9000001 Manager "76fc2bea-902f-425c-9a3d-dcdac4766090"
	// 9000002 Bob "a8a6b1a4-5d0e-4f4c-9a59-0c1d7c2b6f11"
	// 9000003 Carol ""
}
