package kommotest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

func ExampleNewServer() {
	srv := kommotest.NewServer()
	defer srv.Close()

	client, err := srv.Client() // signed with srv.ChannelSecret(), bearer srv.AccessToken()
	if err != nil {
		panic(err)
	}
	fmt.Println(client.ChatBaseURL() == srv.URL()+"/")
	fmt.Println(srv.Connect(srv.AccountAmojoID()) == kommo.ScopeID(srv.ChannelID(), srv.AccountAmojoID()))
	// Output:
	// true
	// true
}

func ExampleServer_DeliverWebhook() {
	srv := kommotest.NewServer()
	defer srv.Close()
	srv.Connect(srv.AccountAmojoID())

	// The integration's webhook endpoint.
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !kommo.VerifyWebhookSignature(body, r.Header.Get("X-Signature"), srv.ChannelSecret()) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var hook struct {
			Message struct {
				Receiver struct{ Phone string } `json:"receiver"`
				Message  struct{ Text string }  `json:"message"`
			} `json:"message"`
		}
		_ = json.Unmarshal(body, &hook)
		fmt.Println(r.URL.Path == "/kommo/"+srv.ScopeID(), hook.Message.Receiver.Phone, hook.Message.Message.Text)
	}))
	defer hooks.Close()

	err := srv.DeliverWebhook(context.Background(), hooks.URL+"/kommo/:scope_id",
		kommotest.WriteFirstMessage("+15550001111", "Your order is ready"))
	fmt.Println(err)
	// Output:
	// true +15550001111 Your order is ready
	// <nil>
}
