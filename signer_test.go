package kommo

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
)

func TestSignerVectors(t *testing.T) {
	reqs := testkit.Vectors(t).Requests
	for _, v := range reqs {
		t.Run(v.Name, func(t *testing.T) {
			target := "https://amojo.kommo.com" + v.Path
			if v.Query != "" {
				target += "?" + v.Query
			}
			req, err := http.NewRequest(v.Method, target, strings.NewReader(v.Body))
			require.NoError(t, err)
			req.Header.Set("Date", v.Date) // a Date already on the request is signed as is
			require.NoError(t, NewSigner(v.Secret).Sign(req, []byte(v.Body)))

			assert.Equal(t, v.ContentMD5, req.Header.Get("Content-MD5"))
			assert.Equal(t, v.Signature, req.Header.Get("X-Signature"))
			assert.Equal(t, v.Date, req.Header.Get("Date"))
			assert.Equal(t, v.ContentType, req.Header.Get("Content-Type"))
			assert.Equal(t, v.ContentMD5, chatsign.ContentMD5([]byte(v.Body)))
			assert.Equal(t, v.Signature, NewSigner(v.Secret).signature(v.Method, v.ContentMD5, v.ContentType, v.Date, v.Path))
			// The query is part of the URL but never of the signature.
			assert.Equal(t, v.Query, req.URL.RawQuery)
		})
	}
}

func TestSignerUsesClockAndFormat(t *testing.T) {
	reqs := testkit.Vectors(t).Requests
	v := reqs[1] // connect
	require.Equal(t, "connect", v.Name)
	at, err := time.Parse(chatsign.DateFormat, v.Date)
	require.NoError(t, err)
	// A clock in another zone must still produce a UTC "+0000" date.
	clock := testkit.NewClock(at.In(time.FixedZone("MSK", 3*3600)))
	req, err := http.NewRequest(http.MethodPost, "https://amojo.kommo.com"+v.Path, nil)
	require.NoError(t, err)
	require.NoError(t, NewSigner(v.Secret, WithSignerClock(clock)).Sign(req, []byte(v.Body)))
	assert.Equal(t, v.Date, req.Header.Get("Date"))
	assert.Equal(t, v.Signature, req.Header.Get("X-Signature"))
}

func TestSignerEmptyBodyAndErrors(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "https://amojo.kommo.com/v2/origin/custom/x/chats/y/history?limit=1", nil)
	require.NoError(t, err)
	require.NoError(t, NewSigner("s").Sign(req, nil))
	assert.Equal(t, "d41d8cd98f00b204e9800998ecf8427e", req.Header.Get("Content-MD5"))
	assert.ErrorIs(t, NewSigner("").Sign(req, nil), ErrEmptySecret)
	var zero Signer
	assert.ErrorIs(t, zero.Sign(req, nil), ErrEmptySecret)
	assert.Equal(t, "", zero.signature("GET", "", "", "", "/"))
	assert.Error(t, NewSigner("s").Sign(nil, nil))
}

func TestSignerNeverPrintsSecret(t *testing.T) {
	const secret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	s := NewSigner(secret)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "signer", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), buf.String()} {
		assert.NotContains(t, out, secret)
	}
}

func TestWebhookSignatureVectors(t *testing.T) {
	hooks := testkit.Vectors(t).Webhooks
	for _, v := range hooks {
		t.Run(v.Name, func(t *testing.T) {
			assert.Equal(t, v.Signature, SignWebhookBody([]byte(v.Body), v.Secret))
			assert.Equal(t, v.Valid, VerifyWebhookSignature([]byte(v.Body), v.Signature, v.Secret))
			assert.True(t, VerifyWebhookSignature([]byte(v.Body), strings.ToUpper(v.Signature), v.Secret), "hex case does not matter")
			assert.False(t, VerifyWebhookSignature([]byte(v.Body+" "), v.Signature, v.Secret), "body change")
			assert.False(t, VerifyWebhookSignature([]byte(v.Body), v.Signature, v.Secret+"x"), "wrong secret")
			assert.False(t, VerifyWebhookSignature([]byte(v.Body), v.Signature[:10], v.Secret), "short signature")
			assert.False(t, VerifyWebhookSignature([]byte(v.Body), "zz"+v.Signature[2:], v.Secret), "not hex")
			assert.False(t, VerifyWebhookSignature([]byte(v.Body), "", v.Secret), "missing signature")
			assert.False(t, VerifyWebhookSignature([]byte(v.Body), SignWebhookBody([]byte(v.Body), ""), ""), "empty secret never verifies")
		})
	}
}

func TestClientSignsHistoryVectorWithoutQuery(t *testing.T) {
	reqs := testkit.Vectors(t).Requests
	v := reqs[0]
	require.Equal(t, "history", v.Name)
	at, err := time.Parse(chatsign.DateFormat, v.Date)
	require.NoError(t, err)

	mock := httpmock.NewMockTransport()
	var got *http.Request
	mock.RegisterResponder(http.MethodGet, "https://amojo.kommo.com"+v.Path, func(r *http.Request) (*http.Response, error) {
		got = r
		return httpmock.NewStringResponse(http.StatusNoContent, ""), nil
	})
	c, err := NewClient(WithChannel("chan", v.Secret), WithHTTPClient(&http.Client{Transport: mock}),
		WithClock(testkit.NewClock(at)), WithRateLimit(0, 0))
	require.NoError(t, err)
	q := url.Values{"offset": {"0"}, "limit": {"50"}}
	resp, err := c.do(t.Context(), &call{api: chatAPI, method: http.MethodGet, path: strings.TrimPrefix(v.Path, "/"), query: q})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.NotNil(t, got)
	assert.Equal(t, v.Query, got.URL.RawQuery, "the query is sent")
	assert.Equal(t, v.Signature, got.Header.Get("X-Signature"), "the query is not signed")
	assert.Equal(t, v.ContentMD5, got.Header.Get("Content-MD5"))
	assert.Equal(t, v.Date, got.Header.Get("Date"))
	assert.Empty(t, got.Header.Get("Authorization"))
	if got.Body != nil {
		b, _ := io.ReadAll(got.Body)
		assert.Empty(t, b)
	}
}
