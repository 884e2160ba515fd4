package kommo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// A Salesbot widget_request step hands over to the integration: verify the
// hook, answer 200 at once, and continue the bot at its return_url.
func ExampleSalesbotService_ParseRequest() {
	srv := kommotest.NewServer()
	defer srv.Close()
	client := srv.MustClient()

	returnURLs := make(chan string, 1)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := client.Salesbot.ParseRequest(r, srv.OAuthClientSecret())
		if err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Println("bot ran on", req.Claims.EntityType, req.Claims.EntityID, "with", string(req.Data))
		returnURLs <- req.ReturnURL // continue outside the 2-second answer
	}))
	defer hooks.Close()

	if err := srv.DeliverSalesbotRequest(context.Background(), hooks.URL, 4100001, map[string]any{"phone": "+15550001111"}); err != nil {
		fmt.Println(err)
		return
	}
	_, err := client.Salesbot.Continue(context.Background(), <-returnURLs, &kommo.SalesbotContinueRequest{
		Data: map[string]any{"status": "success"},
		ExecuteHandlers: []*kommo.SalesbotHandler{
			{Handler: "show", Params: map[string]any{"type": "text", "value": "Your order is confirmed"}},
		},
	})
	fmt.Println(err, len(srv.SalesbotContinues()))
	// Output:
	// bot ran on lead 4100001 with {"phone":"+15550001111"}
	// <nil> 1
}
