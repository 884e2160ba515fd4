package kommo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// UninstallHook is Kommo's notice that an account disabled (uninstalled)
// the integration: stop calling that account and remove what was stored
// for it (its tokens are revoked; CRM calls now answer 401).
type UninstallHook struct {
	// AccountID is the CRM account id.
	AccountID int
	// ClientUUID is the integration's id (the OAuth client id).
	ClientUUID string
}

// ParseUninstallHook verifies and reads the integration-disabled hook:
// Kommo calls the integration's configured URL with GET parameters
// client_uuid, account_id and signature, where signature is the hex
// HMAC-SHA256 of "{client_id}|{account_id}" keyed with the OAuth client
// secret. The signature is compared in constant time; a missing or wrong
// one, or a client_uuid other than clientID, is an error matching
// ErrInvalidSignature; a missing or malformed account_id one matching
// ErrWebhookMalformed. Neither the signature nor the secret appears in an
// error.
//
// GET {your uninstall URL}?client_uuid=…&account_id=…&signature=…
//
//	hook, err := kommo.ParseUninstallHook(r, clientID, clientSecret)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/oauth/step-by-step
func ParseUninstallHook(r *http.Request, clientID, clientSecret string) (*UninstallHook, error) {
	if r == nil || r.URL == nil {
		return nil, fmt.Errorf("kommo: uninstall hook: no request: %w", ErrWebhookMalformed)
	}
	if clientID == "" || clientSecret == "" {
		return nil, fmt.Errorf("kommo: uninstall hook: empty client id or secret: %w", ErrInvalidSignature)
	}
	q := r.URL.Query()
	accountRaw, uuid, sig := q.Get("account_id"), q.Get("client_uuid"), q.Get("signature")
	account, err := strconv.Atoi(accountRaw)
	if err != nil || account <= 0 {
		return nil, fmt.Errorf("kommo: uninstall hook: account_id %s is not a positive id: %w", quoteCapped(accountRaw), ErrWebhookMalformed)
	}
	if !VerifyUninstallSignature(clientID, accountRaw, sig, clientSecret) {
		return nil, fmt.Errorf("kommo: uninstall hook for account %d: %w", account, ErrInvalidSignature)
	}
	if uuid != "" && uuid != clientID {
		return nil, fmt.Errorf("kommo: uninstall hook for account %d: client_uuid %s is not this integration's: %w", account, quoteCapped(uuid), ErrInvalidSignature)
	}
	if uuid == "" {
		uuid = clientID
	}
	return &UninstallHook{AccountID: account, ClientUUID: uuid}, nil
}

// UninstallSignature returns the signature of the integration-disabled
// hook: the lowercase hex HMAC-SHA256 of "{clientID}|{accountID}" keyed
// with the OAuth client secret.
func UninstallSignature(clientID, accountID, clientSecret string) string {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(clientID + "|" + accountID))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyUninstallSignature reports in constant time whether signature (hex,
// either case) is UninstallSignature of clientID and accountID.
func VerifyUninstallSignature(clientID, accountID, signature, clientSecret string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(clientID + "|" + accountID))
	return hmac.Equal(got, m.Sum(nil))
}

// UninstallFunc handles a verified UninstallHook.
type UninstallFunc func(ctx context.Context, hook *UninstallHook) error

// UninstallHandler returns an http.Handler for the integration-disabled
// hook: it answers 405 to anything but GET (and POST, read the same way),
// 401 to a bad signature, 400 to a malformed hook, 500 when fn fails and
// 200 once fn returns nil. logger may be nil; it never sees the signature.
//
//	http.Handle("/kommo/uninstall", kommo.UninstallHandler(clientID, secret, func(ctx context.Context, h *kommo.UninstallHook) error {
//		return store.ForgetAccount(ctx, h.AccountID)
//	}, nil))
func UninstallHandler(clientID, clientSecret string, fn UninstallFunc, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		hook, err := ParseUninstallHook(r, clientID, clientSecret)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, ErrInvalidSignature) {
				status = http.StatusUnauthorized
			}
			logger.LogAttrs(r.Context(), slog.LevelWarn, "kommo: uninstall hook refused", slog.Int("status", status), slog.String("error", err.Error()))
			http.Error(w, http.StatusText(status), status)
			return
		}
		if fn != nil {
			if err := fn(r.Context(), hook); err != nil {
				logger.LogAttrs(r.Context(), slog.LevelError, "kommo: uninstall hook callback failed", slog.Int("account_id", hook.AccountID), slog.String("error", err.Error()))
				http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
}

// quoteCapped quotes the first 64 bytes of an untrusted value for an error.
func quoteCapped(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strconv.Quote(s)
}
