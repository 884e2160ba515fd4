package kommo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientAndSignerNeverPrintSecrets: every print path of the values
// that hold the channel secret or a token (the client, the signer, and
// structs, slices and maps holding them) shows neither.
func TestClientAndSignerNeverPrintSecrets(t *testing.T) {
	const secret, token = "print-path-channel-secret-0123", "print-path-access-token-4567"
	c, err := NewClient(WithChannel("chan", secret), WithBaseDomain("example.kommo.com"), WithAccessToken(token))
	require.NoError(t, err)
	s := NewSigner(secret)
	holder := struct {
		C *Client
		S *Signer
		V Signer
		M map[string]*Client
		L []*Signer
	}{c, s, *s, map[string]*Client{"a": c}, []*Signer{s}}
	var out bytes.Buffer
	for _, v := range []any{c, *c, s, *s, holder, &holder} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		b, _ := json.Marshal(v)
		out.Write(b)
		slog.New(slog.NewTextHandler(&out, nil)).Info("x", "v", v)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "v", v)
	}
	assert.NotContains(t, out.String(), secret)
	assert.NotContains(t, out.String(), token)
}
