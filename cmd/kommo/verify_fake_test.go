package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

// TestVerifyRequestAgreesWithTheFake sends every captured request to
// kommotest (the fake that checks signatures like Kommo) and asserts that
// verify-request's verdict is the fake's: what it calls valid passes the
// signature check, what it calls invalid is refused with 403.
func TestVerifyRequestAgreesWithTheFake(t *testing.T) {
	now, err := time.Parse(chatsign.DateFormat, testDate)
	if err != nil {
		t.Fatal(err)
	}
	srv := kommotest.New(t, kommotest.WithChannel("", testSecret), kommotest.WithClock(testkit.NewClock(now)))
	files, err := filepath.Glob("testdata/requests/*.http")
	if err != nil || len(files) < 10 {
		t.Fatalf("captures: %v, %v", files, err)
	}
	files = append(files, "testdata/requests/valid-curl.txt", "testdata/requests/curl-data-binary.txt")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cr, err := parseCapture(data)
			if err != nil {
				t.Fatal(err)
			}
			problems := diagnoseRequest(cr, testSecret, now)
			target := srv.URL() + cr.path
			if cr.query != "" {
				target += "?" + cr.query
			}
			req, err := http.NewRequest(cr.method, target, bytes.NewReader(cr.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range cr.header {
				if k != "Host" && k != "Content-Length" {
					req.Header[k] = vs
				}
			}
			resp, err := srv.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			refused := resp.StatusCode == http.StatusForbidden
			if refused != (len(problems) > 0) {
				t.Errorf("the fake answered %d; verify-request found %d problem(s): %s", resp.StatusCode, len(problems), strings.Join(problems, "; "))
			}
		})
	}
}
