package kommo

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testSecret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	testToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token-value"
)

// TestAPIErrorDecoding: error answers of both APIs decode into *APIError
// matching exactly one sentinel. Cases are CRM GET api/v4/account unless
// chat says otherwise.
func TestAPIErrorDecoding(t *testing.T) {
	const chatPath = "v2/origin/custom/scope/chats"
	cases := []struct {
		name     string
		chat     bool // a Chat API POST to chatPath
		status   int
		ctype    string
		body     string
		sentinel error
		check    func(t *testing.T, h *harness, e *APIError)
	}{
		{
			name: "400 validation", status: 400, ctype: "application/problem+json",
			body:     `{"validation-errors":[{"request_id":"0","errors":[{"code":"NotSupportedChoice","path":"custom_fields_values.0.field_id","detail":"The value you selected is not a valid choice."}]}],"title":"Bad Request","type":"https://httpstatus.es/400","status":400,"detail":"Request validation failed"}`,
			sentinel: ErrBadRequest,
			check: func(t *testing.T, h *harness, e *APIError) {
				assert.Equal(t, "Bad Request", e.Title)
				assert.Equal(t, "https://httpstatus.es/400", e.Type)
				assert.Equal(t, "Request validation failed", e.Detail)
				require.Len(t, e.ValidationErrors, 1)
				assert.Equal(t, "0", e.ValidationErrors[0].RequestID)
				assert.Equal(t, []FieldError{{Code: "NotSupportedChoice", Path: "custom_fields_values.0.field_id", Detail: "The value you selected is not a valid choice."}}, e.ValidationErrors[0].Errors)
				assert.Contains(t, e.Error(), "custom_fields_values.0.field_id: The value you selected is not a valid choice.")
			},
		},
		{
			name: "400 errors variant", status: 400, ctype: "application/problem+json",
			body:     `{"errors":[{"request_id":"0","errors":{"code":"EntityNotFound","path":"id","detail":"source with id = 31075178 not found"}}],"title":"Bad Request","type":"https://httpstatus.es/400","status":400,"detail":"Invalid request items"}`,
			sentinel: ErrBadRequest,
			check: func(t *testing.T, h *harness, e *APIError) {
				require.Len(t, e.ValidationErrors, 1)
				assert.Equal(t, []FieldError{{Code: "EntityNotFound", Path: "id", Detail: "source with id = 31075178 not found"}}, e.ValidationErrors[0].Errors)
			},
		},
		{
			name: "401", status: 401, ctype: "application/problem+json",
			body:     `{"title":"Unauthorized","type":"https://httpstatus.es/401","status":401,"detail":"Access token has been revoked"}`,
			sentinel: ErrUnauthorized,
			check: func(t *testing.T, h *harness, e *APIError) {
				assert.Equal(t, "Access token has been revoked", e.Detail)
			},
		},
		{
			name: "402", status: 402, ctype: "application/problem+json",
			body:     `{"title":"Payment Required","type":"https://httpstatus.es/402","status":402,"detail":"Account is not paid"}`,
			sentinel: ErrPaymentRequired,
			check:    func(t *testing.T, h *harness, e *APIError) { assert.Equal(t, "Payment Required", e.Title) },
		},
		{
			name: "403", status: 403, ctype: "application/problem+json",
			body:     `{"title":"Forbidden","type":"https://httpstatus.es/403","status":403,"detail":"Account is blocked"}`,
			sentinel: ErrForbidden,
			check:    func(t *testing.T, h *harness, e *APIError) { assert.Equal(t, "Account is blocked", e.Detail) },
		},
		{
			name: "404", status: 404, ctype: "application/problem+json",
			body:     `{"title":"Not Found","type":"https://httpstatus.es/404","status":404,"detail":"Not found"}`,
			sentinel: ErrNotFound,
		},
		{
			name: "422", status: 422, ctype: "application/problem+json",
			body:     `{"title":"Unprocessable Entity","type":"https://httpstatus.es/422","status":422,"detail":"Talk is already closed"}`,
			sentinel: ErrUnprocessableEntity,
		},
		{
			name: "429 html", status: 429, ctype: "text/html",
			body:     "<html><body><h1>429 Too Many Requests</h1></body></html>",
			sentinel: ErrRateLimited,
			check: func(t *testing.T, h *harness, e *APIError) {
				assert.Empty(t, e.Title)
				assert.Equal(t, "<html><body><h1>429 Too Many Requests</h1></body></html>", e.Body)
				assert.Equal(t, "kommo: GET "+h.crmURL("api/v4/account")+": 429 Too Many Requests", e.Error())
			},
		},
		{
			name: "502 huge html", status: 502, ctype: "text/html",
			body:     "<html>" + strings.Repeat("x", 10000) + "</html>",
			sentinel: ErrServer,
			check:    func(t *testing.T, h *harness, e *APIError) { assert.Len(t, e.Body, maxErrorBody) },
		},
		{
			name: "400 Chat API", chat: true, status: 400, ctype: "application/json",
			body:     `{"error_code":400,"error_type":"validation","error_description":"conversation_id is required"}`,
			sentinel: ErrBadRequest,
			check: func(t *testing.T, h *harness, e *APIError) {
				assert.Equal(t, 400, e.ErrorCode)
				assert.Equal(t, "validation", e.ErrorType)
				assert.Equal(t, "conversation_id is required", e.ErrorDescription)
				assert.Equal(t, "kommo: POST "+h.chatURL(chatPath)+": 400 Bad Request: conversation_id is required", e.Error())
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, WithAccessToken(testToken))
			c := &call{api: crmAPI, method: http.MethodGet, path: "api/v4/account", out: new(map[string]any)}
			url := h.crmURL(c.path)
			if tc.chat {
				c = &call{api: chatAPI, method: http.MethodPost, path: chatPath, body: map[string]string{}}
				url = h.chatURL(c.path)
			}
			h.mux.HandleFunc(c.method+" /"+c.path, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.Header().Set("X-Request-Id", "req-42")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := h.client.do(t.Context(), c)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.sentinel)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.StatusCode)
			assert.Equal(t, c.method, ae.Method)
			assert.Equal(t, url, ae.URL)
			assert.Equal(t, "req-42", ae.RequestID)
			for _, other := range []error{ErrBadRequest, ErrUnauthorized, ErrPaymentRequired, ErrForbidden, ErrNotFound, ErrUnprocessableEntity, ErrRateLimited, ErrServer, ErrTalkClosed} {
				if other != tc.sentinel {
					assert.NotErrorIs(t, err, other)
				}
			}
			assert.NotContains(t, err.Error(), testToken)
			if tc.check != nil {
				tc.check(t, h, ae)
			}
		})
	}
}

func TestTalkClosedSentinel(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/talks/12/close", h.replyBody(422,
		`{"title":"Unprocessable Entity","type":"https://httpstatus.es/422","status":422,"detail":"Talk already closed"}`))
	h.mux.HandleFunc("POST /api/v4/sources", h.replyBody(422, `{}`))
	_, err := h.client.Talks.Close(t.Context(), 12, &CloseTalkRequest{ForceClose: true})
	assert.ErrorIs(t, err, ErrTalkClosed)
	assert.ErrorIs(t, err, ErrUnprocessableEntity)
	_, err = h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodPost, path: "api/v4/sources", body: []int{}})
	assert.ErrorIs(t, err, ErrUnprocessableEntity)
	assert.NotErrorIs(t, err, ErrTalkClosed)
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/x", h.replyBody(500, "boom"))
	_, err := h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/x",
		query: map[string][]string{"client_secret": {"s3cr3t"}, "page": {"2"}}})
	require.Error(t, err)
	// map[string][]string is not url.Values: go-querystring cannot encode it.
	assert.Contains(t, err.Error(), "encode query")

	_, err = h.client.do(t.Context(), &call{api: crmAPI, method: http.MethodGet, path: "api/v4/x",
		query: urlValues("client_secret", "s3cr3t", "refresh_token", "r3fr3sh", "page", "2")})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.NotContains(t, err.Error(), "r3fr3sh")
	assert.Contains(t, err.Error(), "page=2")
	assert.ErrorIs(t, err, ErrServer)
}

func TestValidationError(t *testing.T) {
	v := validator{op: "Messages.Send"}
	assert.NoError(t, v.err())
	v.require("", "payload.conversation_id")
	v.require("  ", "payload.msgid")
	v.require("x", "payload.sender.id")
	v.addf("message.type: unknown type %q", "gif")
	err := v.err()
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidRequest)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	assert.Equal(t, []string{"payload.conversation_id: required", "payload.msgid: required", `message.type: unknown type "gif"`}, ve.Problems)
	assert.Equal(t, `kommo: Messages.Send: invalid request: payload.conversation_id: required; payload.msgid: required; message.type: unknown type "gif"`, err.Error())
}
