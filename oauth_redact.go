package kommo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// oauthFormat writes s for any verb (quoted for %q).
func oauthFormat(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s)
		return
	}
	_, _ = io.WriteString(f, s)
}

// oauthRedirectLocation returns a redirect's target resolved against the
// request URL, without user info, query and fragment, and with no secret.
func oauthRedirectLocation(base *url.URL, loc string, secrets ...string) string {
	if loc == "" {
		return ""
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "(unparsable Location)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return oauthScrubString(u.String(), secrets...)
}

// oauthScrub removes secrets from an error's text.
func oauthScrub(err error, secrets ...string) error {
	msg := err.Error()
	clean := oauthScrubString(msg, secrets...)
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// oauthScrubString replaces every secret of at least 4 bytes in s with
// REDACTED: as is, in the escaped forms a JSON encoder may write (\/ for
// a slash, \u escapes, as PHP's json_encode and Go's encoding/json do)
// and percent-encoded. Any other JSON string literal in s that decodes to
// text containing a secret is re-encoded with the secret replaced.
func oauthScrubString(s string, secrets ...string) string {
	var live []string
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		live = append(live, sec)
		for _, form := range oauthSecretForms(sec) {
			s = strings.ReplaceAll(s, form, "REDACTED")
		}
	}
	if len(live) == 0 || !strings.Contains(s, `\`) {
		return s
	}
	return oauthScrubJSONStrings(s, live)
}

// oauthSecretForms returns sec as is and as JSON encoders and URL
// encoding write it.
func oauthSecretForms(sec string) []string {
	forms := []string{sec}
	add := func(f string) {
		if f != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	var buf bytes.Buffer
	for _, html := range []bool{true, false} {
		buf.Reset()
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(html)
		if enc.Encode(sec) == nil {
			q := strings.TrimSuffix(buf.String(), "\n")
			q = q[1 : len(q)-1]
			add(q)
			add(strings.ReplaceAll(q, "/", `\/`))
		}
	}
	add(url.QueryEscape(sec))
	add(url.PathEscape(sec))
	return forms
}

// oauthScrubJSONStrings finds the JSON string literals of s that have an
// escape, decodes each, and re-encodes with REDACTED in place of the
// secrets those that contain one.
func oauthScrubJSONStrings(s string, secrets []string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		end, escaped := -1, false
		for j := i + 1; j < len(s); j++ {
			if s[j] == '\\' {
				escaped = true
				j++
				continue
			}
			if s[j] == '"' {
				end = j
				break
			}
		}
		if end < 0 {
			break
		}
		if escaped {
			var text string
			if json.Unmarshal([]byte(s[i:end+1]), &text) == nil {
				clean := text
				for _, sec := range secrets {
					clean = strings.ReplaceAll(clean, sec, "REDACTED")
				}
				if clean != text {
					if enc, err := json.Marshal(clean); err == nil {
						b.WriteString(s[last:i])
						b.Write(enc)
						last = end + 1
					}
				}
			}
		}
		i = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
