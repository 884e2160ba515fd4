package kommo

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kommo-go/kommo/internal/testkit"
	"golang.org/x/oauth2"
)

// Fuzz targets for what a hostile server controls: error bodies and
// Retry-After, history pages and CRM list pages. Run each for a minute
// before changing a decoder:
//
//	go test -run='^$' -fuzz='^FuzzAPIError$' -fuzztime=60s .
//	go test -run='^$' -fuzz='^FuzzHistoryPage$' -fuzztime=60s .
//	go test -run='^$' -fuzz='^FuzzCRMList$' -fuzztime=60s .

// FuzzAPIError builds an APIError from any status, body and Retry-After,
// with credentials on the request: no panic, no negative or overflowing
// wait, and no credential in what the error shows.
func FuzzAPIError(f *testing.F) {
	for _, name := range []string{"problem_400_validation.json", "problem_401.json", "problem_402.json",
		"problem_403.json", "problem_404.json", "problem_422.json", "sources_delete_errors.json"} {
		f.Add(400, testkit.Fixture(f, "crm", name), "")
	}
	f.Add(429, []byte(`<html>429</html>`), "3")
	f.Add(429, []byte(`{"error_code":"429","error_type":"rate"}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(503, []byte(`{}`), "NaN")
	f.Add(503, []byte(`null`), "1e400")
	f.Add(500, []byte(`{"detail":"Bearer fuzz-token-123 sig-abcdef"}`), "-1")
	const token, sig = "fuzz-token-123", "sig-abcdef"
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		req := &http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "https", Host: "x.kommo.com", Path: "/api/v4/sources"},
			Header: http.Header{"Authorization": {"Bearer " + token}, "X-Signature": {sig}}}
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}}
		e := newAPIError(req, resp, body, now)
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Fatalf("Retry-After %q gave %s", retryAfter, e.RetryAfter)
		}
		if len(e.Body) > maxErrorBody {
			t.Fatalf("Body keeps %d bytes", len(e.Body))
		}
		out := e.Error() + e.Body + e.Title + e.Detail + e.ErrorDescription + strings.Join(e.Response.Request.Header.Values("Authorization"), "")
		if strings.Contains(out, token) || strings.Contains(out, sig) {
			t.Fatalf("a credential shows: %q", out)
		}
		_ = errors.Is(e, ErrRateLimited)
	})
}

// FuzzHistoryPage decodes any history body with a limit: no panic, and a
// page that decodes never holds more messages than the limit.
func FuzzHistoryPage(f *testing.F) {
	f.Add(testkit.Fixture(f, "chat", "history_page.json"), 50)
	f.Add([]byte(`{"messages":[{},{},{}]}`), 2)
	f.Add([]byte(`{"messages":null}`), 1)
	f.Add([]byte(`{"messages":[{"message":{"text":"a,b]}\""}}]}`), 1)
	f.Add([]byte(`{"messages":[[],[[]],{"a":[1,2]}]}`), 3)
	f.Fuzz(func(t *testing.T, body []byte, limit int) {
		if limit < 1 || limit > HistoryMaxLimit {
			limit = HistoryMaxLimit
		}
		page := chatHistoryPage{Messages: chatHistoryItems{max: limit}}
		if json.Unmarshal(body, &page) != nil {
			return
		}
		if n := len(page.Messages.items); n > limit {
			t.Fatalf("%d messages decoded for a limit of %d", n, limit)
		}
		msgs := page.messages()
		if len(msgs) != len(page.Messages.items) {
			t.Fatalf("%d messages converted from %d items", len(msgs), len(page.Messages.items))
		}
		// The count that guards decoding agrees with the decoder.
		var raw struct {
			Messages []json.RawMessage `json:"messages"`
		}
		if json.Unmarshal(body, &raw) == nil {
			var top map[string]json.RawMessage
			if json.Unmarshal(body, &top) == nil && top["messages"] != nil {
				if n, err := countJSONArray(top["messages"]); err == nil && n != len(raw.Messages) {
					t.Fatalf("countJSONArray says %d, the decoder found %d", n, len(raw.Messages))
				}
			}
		}
	})
}

// FuzzCRMList decodes any HAL list body: no panic, and a next link that is
// followed only ever changes the query.
func FuzzCRMList(f *testing.F) {
	for _, name := range []string{"sources_list.json", "sources_list_page1.json", "sources_list_page2.json", "contacts_chats_list.json"} {
		f.Add(testkit.Fixture(f, "crm", name))
	}
	f.Add([]byte(`{"_links":{"next":{"href":"https://evil.example/api/v4/sources?page=2"}},"_embedded":{"sources":[]}}`))
	f.Add([]byte(`{"_embedded":{"sources":{}}}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, key := range []string{"sources", "chats"} {
			items, next, err := crmDecodeList[json.RawMessage](body, key)
			if err != nil {
				continue
			}
			_ = items
			if next != "" {
				if _, err := crmNextQuery(next); err != nil {
					continue
				}
			}
		}
	})
}

// fuzzTransport answers every request with a fixed status and body.
type fuzzTransport struct {
	status int
	body   []byte
}

func (f fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: f.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(f.body)), Request: r}, nil
}

// FuzzOAuthResponse answers Exchange and Refresh with any status and body:
// no panic, a token only from a 2xx with an access token, and never the
// client secret, the code or the refresh token in an error.
//
//	go test -run='^$' -fuzz='^FuzzOAuthResponse$' -fuzztime=60s .
func FuzzOAuthResponse(f *testing.F) {
	f.Add(200, testkit.Fixture(f, "crm", "token.json"))
	f.Add(400, testkit.Fixture(f, "crm", "token_error_400.json"))
	f.Add(401, testkit.Fixture(f, "crm", "token_error_401.json"))
	f.Add(400, []byte(`{"hint":"fuzz-client-secret-0123456789 fuzz-refresh-token-xyz fuzz-code-abc","detail":"fuzz\/client-secret"}`))
	f.Add(200, []byte(`{"access_token":"","expires_in":-1}`))
	f.Add(307, []byte(``))
	f.Add(200, []byte(`null`))
	const secret, refresh, code = "fuzz-client-secret-0123456789", "fuzz-refresh-token-xyz", "fuzz-code-abc"
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		cfg := &OAuthConfig{ClientID: "client-1", ClientSecret: secret, RedirectURL: "https://app.example/cb",
			TokenURL: "https://x.kommo.com/oauth2/access_token", HTTPClient: &http.Client{Transport: fuzzTransport{status, body}}}
		for _, call := range []struct {
			do      func() (*oauth2.Token, error)
			secrets []string // what this call sends, so what it must never show
		}{
			{func() (*oauth2.Token, error) { return cfg.Exchange(t.Context(), code) }, []string{secret, code}},
			{func() (*oauth2.Token, error) { return cfg.Refresh(t.Context(), refresh) }, []string{secret, refresh}},
		} {
			tok, err := call.do()
			if err != nil {
				for _, s := range call.secrets {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error shows %q: %v", s, err)
					}
				}
				continue
			}
			if status < 200 || status > 299 || tok == nil || tok.AccessToken == "" {
				t.Fatalf("status %d gave token %+v and no error", status, tok)
			}
		}
	})
}
