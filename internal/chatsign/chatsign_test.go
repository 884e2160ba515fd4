package chatsign

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/stretchr/testify/assert"
)

// loadVectors reads the module's known-answer vectors through testkit.
func loadVectors(t testing.TB) ([]testkit.RequestVector, []testkit.WebhookVector) {
	t.Helper()
	v := testkit.Vectors(t)
	return v.Requests, v.Webhooks
}

func TestRequestVectors(t *testing.T) {
	reqs, _ := loadVectors(t)
	for _, v := range reqs {
		t.Run(v.Name, func(t *testing.T) {
			assert.Equal(t, ContentTypeJSON, v.ContentType)
			assert.Equal(t, v.ContentMD5, ContentMD5([]byte(v.Body)))

			sts := StringToSign(v.Method, v.ContentMD5, v.ContentType, v.Date, v.Path)
			want := strings.ToUpper(v.Method) + "\n" + v.ContentMD5 + "\n" + v.ContentType + "\n" + v.Date + "\n" + v.Path
			assert.Equal(t, want, sts)
			assert.NotContains(t, sts, "?", "the query is never signed")

			assert.Equal(t, v.Signature, Sign(v.Secret, sts))
			k := NewKey(v.Secret)
			assert.Equal(t, v.Signature, k.Sign(sts))
			assert.Equal(t, v.Signature, k.Signature(v.Method, v.ContentMD5, v.ContentType, v.Date, v.Path))
			// Twice, so the second call reuses a pooled state.
			assert.Equal(t, v.Signature, k.Signature(v.Method, v.ContentMD5, v.ContentType, v.Date, v.Path))

			_, err := time.Parse(DateFormat, v.Date)
			assert.NoError(t, err, "Date %q has the DateFormat layout", v.Date)
		})
	}
}

func TestStringToSignDocumentedExample(t *testing.T) {
	// The typing example of spec §1, written out line by line.
	const want = "POST\n" +
		"255a22566d68be207fa36804e78a523a\n" +
		"application/json\n" +
		"Thu, 16 Dec 2021 16:01:21 +0000\n" +
		"/v2/origin/custom/344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81/typing"
	got := StringToSign("post", "255a22566d68be207fa36804e78a523a", "application/json", "Thu, 16 Dec 2021 16:01:21 +0000",
		"/v2/origin/custom/344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81/typing")
	assert.Equal(t, want, got, "method upper-cased, no trailing newline")
	assert.Equal(t, "e8263b1daf2b20396c02db6c8c846f95cc0f9540", Sign("f2d7f8704eff95087ed45b23ba99c0b5aac8278e", got))
}

func TestStringToSignEmptyValues(t *testing.T) {
	// A missing header contributes an empty string.
	assert.Equal(t, "GET\n\n\n\n/", StringToSign("GET", "", "", "", "/"))
	assert.Equal(t, "prefix:DELETE\na\nb\nc\n/p", string(AppendStringToSign([]byte("prefix:"), "delete", "a", "b", "c", "/p")))
}

func TestContentMD5(t *testing.T) {
	assert.Equal(t, "d41d8cd98f00b204e9800998ecf8427e", ContentMD5(nil))
	assert.Equal(t, "d41d8cd98f00b204e9800998ecf8427e", ContentMD5([]byte{}))
	assert.NotEqual(t, ContentMD5([]byte(`{}`)), ContentMD5([]byte("{}\n")), "a trailing newline counts")
}

func TestWebhookVectors(t *testing.T) {
	_, hooks := loadVectors(t)
	for _, v := range hooks {
		t.Run(v.Name, func(t *testing.T) {
			body := []byte(v.Body)
			if v.Valid {
				assert.Equal(t, v.Signature, SignWebhookBody(body, v.Secret))
			}
			assert.Equal(t, v.Valid, VerifyWebhookSignature(body, v.Signature, v.Secret))
			if !v.Valid {
				return
			}
			assert.True(t, VerifyWebhookSignature(body, strings.ToUpper(v.Signature), v.Secret), "hex case does not matter")
			assert.False(t, VerifyWebhookSignature([]byte(v.Body+" "), v.Signature, v.Secret), "body change")
			assert.False(t, VerifyWebhookSignature(body, v.Signature, v.Secret+"x"), "wrong secret")
			assert.False(t, VerifyWebhookSignature(body, v.Signature[:10], v.Secret), "short signature")
			assert.False(t, VerifyWebhookSignature(body, "zz"+v.Signature[2:], v.Secret), "not hex")
			assert.False(t, VerifyWebhookSignature(body, "", v.Secret), "missing signature")
			assert.False(t, VerifyWebhookSignature(body, SignWebhookBody(body, ""), ""), "empty secret never verifies")
		})
	}
}

func TestKeyConcurrent(t *testing.T) {
	reqs, _ := loadVectors(t)
	v := reqs[0]
	k := NewKey(v.Secret)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if got := k.Signature(v.Method, v.ContentMD5, v.ContentType, v.Date, v.Path); got != v.Signature {
					t.Errorf("got %s, want %s", got, v.Signature)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestKeyAllocatesOnlyTheResult(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	reqs, _ := loadVectors(t)
	v := reqs[2]
	k := NewKey(v.Secret)
	body := []byte(v.Body)
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
		_ = k.Signature(v.Method, v.ContentMD5, v.ContentType, v.Date, v.Path)
	}), "Key.Signature")
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = ContentMD5(body) }), "ContentMD5")
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	const secret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	k := NewKey(secret)
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", k)
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), buf.String()} {
		assert.NotContains(t, out, secret)
	}
}
