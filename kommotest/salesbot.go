package kommotest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"time"
)

// SalesbotTokenLifetime is how long a widget_request token the server
// signs stays valid.
const SalesbotTokenLifetime = 10 * time.Minute

// SalesbotContinue is a continue call the server received for a bot.
type SalesbotContinue struct {
	BotID, ContinueID int
	// Body is the JSON body as sent.
	Body json.RawMessage
}

type salesbotState struct {
	nextBot, nextContinue int
	pending               map[string]bool // "bot/continue" awaiting a continue
	continues             []SalesbotContinue
}

// salesbot returns the server's Salesbot state (call with s.mu held).
func (s *Server) salesbotLocked() *salesbotState {
	st := &s.integ.salesbot
	if st.pending == nil {
		st.pending, st.nextBot, st.nextContinue = map[string]bool{}, 321, 123
	}
	return st
}

// NewSalesbotRequest returns the POST a Salesbot widget_request step sends
// to url: a JSON body with token (an HS256 JWT signed with the OAuth client
// secret, valid for SalesbotTokenLifetime by the server clock, with
// account_id, subdomain, entity_type "lead" and entity_id), data and
// return_url, which points at this server's
// /api/v4/salesbot/{bot_id}/continue/{continue_id} and accepts one
// continue call.
func (s *Server) NewSalesbotRequest(ctx context.Context, url string, leadID int, data map[string]any) (*http.Request, error) {
	if ctx == nil {
		return nil, errors.New("kommotest: nil context")
	}
	if u, err := neturl.Parse(url); err != nil || u.Host == "" {
		return nil, fmt.Errorf("kommotest: salesbot URL %q is not an absolute URL", url)
	}
	s.mu.Lock()
	st := s.salesbotLocked()
	bot, cont := st.nextBot, st.nextContinue
	st.nextContinue++
	st.pending[strconv.Itoa(bot)+"/"+strconv.Itoa(cont)] = true
	now := s.now()
	s.mu.Unlock()

	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://" + s.AccountDomain(), "aud": url, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(SalesbotTokenLifetime).Unix(), "account_id": s.accountID, "subdomain": s.subdomain,
		"entity_type": "lead", "entity_id": leadID,
	})
	in := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(claims)
	m := hmac.New(sha256.New, []byte(s.oauthSecret))
	m.Write([]byte(in))
	if data == nil {
		data = map[string]any{}
	}
	body, err := json.Marshal(map[string]any{
		"token": in + "." + enc(m.Sum(nil)), "data": data,
		"return_url": s.ts.URL + "/api/v4/salesbot/" + strconv.Itoa(bot) + "/continue/" + strconv.Itoa(cont),
	})
	if err != nil {
		return nil, fmt.Errorf("kommotest: encode salesbot data: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("kommotest: build salesbot request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kommotest-webhooks/1.0")
	return req, nil
}

// DeliverSalesbotRequest sends NewSalesbotRequest to url, waiting at most
// two seconds (Salesbot's limit) for a 200; any other answer is a
// *WebhookError.
func (s *Server) DeliverSalesbotRequest(ctx context.Context, url string, leadID int, data map[string]any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := s.NewSalesbotRequest(ctx, url, leadID, data)
	if err != nil {
		return err
	}
	return s.deliver(req, "salesbot request", http.StatusOK, http.StatusOK)
}

// SalesbotContinues returns the continue calls received, in order.
func (s *Server) SalesbotContinues() []SalesbotContinue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.salesbotLocked().continues)
}

// POST /api/v4/{salesbot|marketingbot}/{bot}/continue/{id} — 202 once per
// widget_request, 404 otherwise; at most 10 execute_handlers.
func (s *Server) crmSalesbotContinue(r *http.Request) reply {
	st := s.salesbotLocked()
	key := r.PathValue("bot") + "/" + r.PathValue("id")
	if !st.pending[key] {
		return crmFail(http.StatusNotFound, "no widget waiting for a result")
	}
	var req struct {
		Data            json.RawMessage   `json:"data"`
		ExecuteHandlers []json.RawMessage `json:"execute_handlers"`
	}
	body := bodyOf(r)
	if len(bytes.TrimSpace(body)) > 0 {
		if p := decodeJSON(body, &req); p != "" {
			return crmFail(http.StatusBadRequest, p)
		}
	}
	if len(req.ExecuteHandlers) > 10 {
		return crmFail(http.StatusBadRequest, "at most 10 execute_handlers")
	}
	delete(st.pending, key)
	bot, _ := strconv.Atoi(r.PathValue("bot"))
	id, _ := strconv.Atoi(r.PathValue("id"))
	st.continues = append(st.continues, SalesbotContinue{BotID: bot, ContinueID: id, Body: bytes.Clone(body)})
	return reply{status: http.StatusAccepted}
}
