package kommo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// SalesbotService verifies Salesbot widget_request hooks and continues the
// bot afterwards.
//
// amoCRM: https://www.amocrm.ru/developers/content/digital_pipeline/salesbot
type SalesbotService service

// SalesbotTokenLeeway is the clock skew allowed when checking a
// widget_request token's exp and nbf.
const SalesbotTokenLeeway = 30 * time.Second

// SalesbotContinueMaxHandlers is the most execute_handlers Kommo accepts.
const SalesbotContinueMaxHandlers = 10

// MaxSalesbotRequestBody caps the widget_request body ParseRequest reads.
const MaxSalesbotRequestBody = 1 << 20

// SalesbotClaims are the claims of a widget_request token.
type SalesbotClaims struct {
	Issuer   string          `json:"iss"`
	Audience json.RawMessage `json:"aud,omitempty"`
	// IssuedAt, NotBefore and ExpiresAt are Unix seconds.
	IssuedAt  int64 `json:"iat"`
	NotBefore int64 `json:"nbf"`
	ExpiresAt int64 `json:"exp"`
	// AccountID and Subdomain name the account the bot ran in.
	AccountID int    `json:"account_id"`
	Subdomain string `json:"subdomain"`
	// EntityType ("lead", "contact", "customer") and EntityID are what the
	// bot worked on.
	EntityType string `json:"entity_type"`
	EntityID   int    `json:"entity_id"`
}

// UnmarshalJSON accepts ids sent as numbers or strings.
func (c *SalesbotClaims) UnmarshalJSON(b []byte) error {
	type plain SalesbotClaims
	var raw struct {
		plain
		AccountID json.RawMessage `json:"account_id"`
		EntityID  json.RawMessage `json:"entity_id"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = SalesbotClaims(raw.plain)
	c.AccountID = atoiLoose(strings.Trim(string(raw.AccountID), `"`))
	c.EntityID = atoiLoose(strings.Trim(string(raw.EntityID), `"`))
	return nil
}

// SalesbotRequest is a verified widget_request hook.
type SalesbotRequest struct {
	Claims *SalesbotClaims
	// Data is the "data" the bot step sent (its placeholders filled in),
	// as JSON.
	Data json.RawMessage
	// ReturnURL is where to continue the bot (SalesbotService.Continue).
	ReturnURL string
}

// VerifySalesbotToken checks a widget_request token: a JWT whose header
// says exactly "alg":"HS256", signed with HMAC-SHA256 keyed with the OAuth
// client secret (compared in constant time), with an exp claim not past
// and an nbf (when present) not ahead of now, allowing
// SalesbotTokenLeeway. Every failure matches ErrInvalidJWT; neither the
// token nor the secret appears in an error.
func VerifySalesbotToken(token, clientSecret string, now time.Time) (*SalesbotClaims, error) {
	if clientSecret == "" {
		return nil, fmt.Errorf("kommo: salesbot token: empty client secret: %w", ErrInvalidJWT)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("kommo: salesbot token is not a JWT (%d parts): %w", len(parts), ErrInvalidJWT)
	}
	dec := base64.RawURLEncoding
	hb, err1 := dec.DecodeString(parts[0])
	pb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, fmt.Errorf("kommo: salesbot token is not base64url: %w", ErrInvalidJWT)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, fmt.Errorf("kommo: salesbot token header is not JSON: %w", ErrInvalidJWT)
	}
	if header.Alg != "HS256" {
		return nil, fmt.Errorf("kommo: salesbot token algorithm %s, want HS256: %w", quoteCapped(header.Alg), ErrInvalidJWT)
	}
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return nil, fmt.Errorf("kommo: salesbot token signature does not match the client secret: %w", ErrInvalidJWT)
	}
	c := new(SalesbotClaims)
	if err := json.Unmarshal(pb, c); err != nil {
		return nil, fmt.Errorf("kommo: salesbot token claims are not JSON: %w", ErrInvalidJWT)
	}
	switch {
	case c.ExpiresAt == 0:
		return nil, fmt.Errorf("kommo: salesbot token has no exp: %w", ErrInvalidJWT)
	case !now.Before(time.Unix(c.ExpiresAt, 0).Add(SalesbotTokenLeeway)):
		return nil, fmt.Errorf("kommo: salesbot token expired at %s: %w", time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339), ErrInvalidJWT)
	case c.NotBefore != 0 && now.Add(SalesbotTokenLeeway).Before(time.Unix(c.NotBefore, 0)):
		return nil, fmt.Errorf("kommo: salesbot token not valid before %s: %w", time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339), ErrInvalidJWT)
	}
	return c, nil
}

// ParseRequest verifies and reads a widget_request hook: a POST whose
// JSON (or form) body carries token, data and return_url. The token is
// checked by VerifySalesbotToken against the client's Clock. Answer the
// hook with 200 within 2 seconds, then call Continue.
//
// POST {the widget_request step's url}
//
//	req, err := client.Salesbot.ParseRequest(r, clientSecret)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/digital_pipeline/salesbot
func (s *SalesbotService) ParseRequest(r *http.Request, clientSecret string) (*SalesbotRequest, error) {
	if r == nil || r.Body == nil {
		return nil, fmt.Errorf("kommo: salesbot request: no body: %w", ErrWebhookMalformed)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxSalesbotRequestBody+1))
	if err != nil {
		return nil, fmt.Errorf("kommo: salesbot request: %v: %w", err, ErrWebhookBodyRead)
	}
	if len(body) > MaxSalesbotRequestBody {
		return nil, fmt.Errorf("kommo: salesbot request: body over %d bytes: %w", MaxSalesbotRequestBody, ErrWebhookTooLarge)
	}
	var in struct {
		Token     string          `json:"token"`
		Data      json.RawMessage `json:"data"`
		ReturnURL string          `json:"return_url"`
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("kommo: salesbot request: %v: %w", err, ErrWebhookMalformed)
		}
		in.Token, in.ReturnURL = form.Get("token"), form.Get("return_url")
		data := map[string]string{}
		for k, vs := range form {
			if rest, ok := strings.CutPrefix(k, "data["); ok && len(vs) > 0 {
				data[strings.Replace(rest, "]", "", 1)] = vs[len(vs)-1]
			}
		}
		in.Data, _ = json.Marshal(data)
	} else if err := json.Unmarshal(bytes.TrimSpace(body), &in); err != nil {
		return nil, fmt.Errorf("kommo: salesbot request: body is not JSON: %w", ErrWebhookMalformed)
	}
	if in.Token == "" || in.ReturnURL == "" {
		return nil, fmt.Errorf("kommo: salesbot request: token and return_url are required: %w", ErrWebhookMalformed)
	}
	claims, err := VerifySalesbotToken(in.Token, clientSecret, s.client.clock.Now())
	if err != nil {
		return nil, err
	}
	return &SalesbotRequest{Claims: claims, Data: in.Data, ReturnURL: in.ReturnURL}, nil
}

// SalesbotContinueRequest is the body of SalesbotService.Continue.
type SalesbotContinueRequest struct {
	// Data is handed to the bot: a later step reads key k as {{json.k}}.
	Data map[string]any `json:"data,omitempty"`
	// ExecuteHandlers run before the bot goes on (show and goto; at most
	// SalesbotContinueMaxHandlers).
	ExecuteHandlers []*SalesbotHandler `json:"execute_handlers,omitempty"`
}

// SalesbotHandler is one handler of SalesbotContinueRequest, e.g.
// {Handler: "show", Params: map[string]any{"type": "text", "value": "Done"}}.
type SalesbotHandler struct {
	Handler string         `json:"handler"`
	Params  map[string]any `json:"params,omitempty"`
}

var salesbotContinuePath = regexp.MustCompile(`^/api/v4/(salesbot|marketingbot)/[0-9]+/continue/[0-9]+$`)

// Continue resumes the bot of a widget_request at its return_url (Kommo
// answers 202). The return_url must be on the client's own account host
// and name /api/v4/{salesbot|marketingbot}/{bot_id}/continue/{continue_id};
// anything else is a *ValidationError, so the bearer token is never sent
// to a URL from a hook that names another host. req may be nil.
//
// POST /api/v4/salesbot/{bot_id}/continue/{continue_id}
//
//	_, err := client.Salesbot.Continue(ctx, hook.ReturnURL, &kommo.SalesbotContinueRequest{Data: map[string]any{"status": "success"}})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/widgets-api
func (s *SalesbotService) Continue(ctx context.Context, returnURL string, req *SalesbotContinueRequest) (*Response, error) {
	v := validator{op: "Salesbot.Continue"}
	u, err := url.Parse(returnURL)
	var rel string
	switch {
	case err != nil || u.Host == "":
		v.addf("return_url: %s is not an absolute URL", quoteCapped(returnURL))
	case s.client.crmBase != nil && !strings.EqualFold(u.Host, s.client.crmBase.Host):
		v.addf("return_url: host %s is not the account's %s", quoteCapped(u.Host), s.client.crmBase.Host)
	case !salesbotContinuePath.MatchString(u.Path) || u.RawQuery != "":
		v.addf("return_url: path %s is not /api/v4/{salesbot|marketingbot}/{id}/continue/{id}", quoteCapped(u.Path))
	default:
		rel = strings.TrimPrefix(u.Path, "/")
	}
	body := SalesbotContinueRequest{}
	if req != nil {
		body = *req
		if n := len(req.ExecuteHandlers); n > SalesbotContinueMaxHandlers {
			v.addf("execute_handlers: %d handlers, at most %d allowed", n, SalesbotContinueMaxHandlers)
		}
		for i, h := range req.ExecuteHandlers {
			if h == nil {
				v.addf("execute_handlers[%d]: nil handler", i)
			} else if h.Handler != "show" && h.Handler != "goto" {
				v.addf("execute_handlers[%d].handler: %s is not show or goto", i, quoteCapped(h.Handler))
			}
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{op: "Salesbot.Continue", api: crmAPI, method: http.MethodPost, path: rel, body: body})
}
