package kommo_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// The integration's uninstall URL: forget the account once Kommo says the
// integration was disabled there.
func ExampleUninstallHandler() {
	srv := kommotest.NewServer()
	defer srv.Close()

	h := kommo.UninstallHandler(srv.OAuthClientID(), srv.OAuthClientSecret(), func(ctx context.Context, hook *kommo.UninstallHook) error {
		fmt.Println("forget account", hook.AccountID)
		return nil // e.g. delete its tokens from the store
	}, nil)
	hooks := httptest.NewServer(h)
	defer hooks.Close()

	fmt.Println(srv.DeliverUninstall(context.Background(), hooks.URL+"/kommo/uninstall"))
	// Output:
	// forget account 30000001
	// <nil>
}
