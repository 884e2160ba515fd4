package kommo

import (
	"context"
	"net/http"
	"net/url"
)

// ChannelHookAPIV2 is the webhook format version Connect asks for unless
// ConnectRequest.HookAPIVersion says otherwise ("v1" is deprecated).
const ChannelHookAPIV2 = "v2"

// ConnectRequest is the body of POST /v2/origin/custom/{channel_id}/connect.
type ConnectRequest struct {
	// AccountID is the account's amojo id (not the CRM account id); see
	// Account.AmojoID. Required.
	AccountID string `json:"account_id"`
	// Title is the channel's display name in the account (default: the
	// channel's name).
	Title string `json:"title,omitempty"`
	// HookAPIVersion selects the webhook format; empty means
	// ChannelHookAPIV2.
	HookAPIVersion string `json:"hook_api_version"`
	// IsTimeWindowDisabled turns the channel's reply time window off for
	// this account.
	IsTimeWindowDisabled bool `json:"is_time_window_disabled,omitempty"`
}

// ChannelConnection is the channel's connection to one account, as returned
// by Connect. ScopeID addresses every later Chat API call for the account.
type ChannelConnection struct {
	AccountID            string `json:"account_id"`
	ScopeID              string `json:"scope_id"`
	Title                string `json:"title"`
	HookAPIVersion       string `json:"hook_api_version"`
	IsTimeWindowDisabled bool   `json:"is_time_window_disabled"`
}

// Connect connects the client's channel (WithChannel) to an account and
// returns the connection with its scope id. It must be called again after
// every (re)installation of the integration, because uninstalling it
// disconnects the channel.
//
// Endpoint: POST /v2/origin/custom/{channel_id}/connect
//
//	conn, _, err := client.Channels.Connect(ctx, &kommo.ConnectRequest{AccountID: amojoID})
//	scopeID := conn.ScopeID
//
// Kommo docs: https://www.kommo.com/developers/content/chats/connecting-chat-channel/
func (s *ChannelsService) Connect(ctx context.Context, req *ConnectRequest) (*ChannelConnection, *Response, error) {
	v := validator{op: "Channels.Connect"}
	if req == nil {
		v.addf("request: required")
	} else {
		v.pathID(req.AccountID, "account_id") // it becomes part of the scope id
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	body := *req
	if body.HookAPIVersion == "" {
		body.HookAPIVersion = ChannelHookAPIV2
	}
	out := new(ChannelConnection)
	resp, err := s.client.do(ctx, &call{
		op:     "Channels.Connect",
		api:    chatAPI,
		method: http.MethodPost,
		path:   chatPathPrefix + url.PathEscape(s.client.ChannelID()) + "/connect",
		body:   &body,
		out:    out,
	})
	if err != nil {
		return nil, resp, err
	}
	return out, resp, nil
}

// chatAccountBody is the body of the disconnect request.
type chatAccountBody struct {
	AccountID string `json:"account_id"`
}

// Disconnect disconnects the client's channel from the account with the
// given amojo id. Kommo stops sending webhooks for the account; "Write
// first" disappears from its lead cards once their cache expires.
//
// Endpoint: DELETE /v2/origin/custom/{channel_id}/disconnect (with a JSON
// body)
//
//	_, err := client.Channels.Disconnect(ctx, amojoID)
//
// Kommo docs: https://developers.kommo.com/reference/disconnect-channel
func (s *ChannelsService) Disconnect(ctx context.Context, accountAmojoID string) (*Response, error) {
	v := validator{op: "Channels.Disconnect"}
	v.pathID(accountAmojoID, "account_id")
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{
		op:     "Channels.Disconnect",
		api:    chatAPI,
		method: http.MethodDelete,
		path:   chatPathPrefix + url.PathEscape(s.client.ChannelID()) + "/disconnect",
		body:   &chatAccountBody{AccountID: accountAmojoID},
	})
}
