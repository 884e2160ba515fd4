package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"os"
	"strings"
)

// capturedRequest is a request as verify-request reads it: raw HTTP text or
// a curl command line.
type capturedRequest struct {
	method string
	path   string // escaped path
	query  string // raw query, "" if none
	header textproto.MIMEHeader
	body   []byte
	from   string // "raw HTTP" or "curl"
	// note says how the capture was read when that matters to the verdict.
	note string
	// looseEnd is set for raw HTTP without Content-Length, whose body may
	// end with a newline the file added.
	looseEnd bool
}

// parseCapture reads a captured request, raw HTTP or a curl command.
func parseCapture(data []byte) (*capturedRequest, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("curl ")) || bytes.HasPrefix(trimmed, []byte("$ curl ")) {
		return parseCurl(strings.TrimPrefix(string(trimmed), "$ "))
	}
	return parseRawHTTP(data)
}

// parseRawHTTP parses an HTTP/1.1 request as text, keeping header values and
// body bytes exactly (a Content-Length cuts the body).
func parseRawHTTP(data []byte) (*capturedRequest, error) {
	head, body, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	if !ok || bytes.Contains(head, []byte("\n\n")) {
		if head, body, ok = bytes.Cut(data, []byte("\n\n")); !ok {
			head, body = data, nil
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	parts := strings.Fields(lines[0])
	if len(parts) < 2 {
		return nil, fmt.Errorf("first line %q is not an HTTP request line (METHOD PATH HTTP/1.1)", lines[0])
	}
	cr := &capturedRequest{method: parts[0], header: textproto.MIMEHeader{}, from: "raw HTTP"}
	if err := cr.setTarget(parts[1]); err != nil {
		return nil, err
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("header line %q has no colon", l)
		}
		cr.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	cr.looseEnd = cr.header.Get("Content-Length") == ""
	if n := cr.header.Get("Content-Length"); n != "" {
		var cl int
		if _, err := fmt.Sscan(n, &cl); err == nil && cl >= 0 && cl <= len(body) {
			body = body[:cl]
		}
	}
	cr.body = body
	return cr, nil
}

func (cr *capturedRequest) setTarget(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("request target %q: %v", target, err)
	}
	cr.path, cr.query = u.EscapedPath(), u.RawQuery
	return nil
}

// parseCurl reads the flags of a curl command line that matter to signing:
// -X, -H, the -d family and the URL. "-d @file" drops newlines as curl does.
func parseCurl(cmd string) (*capturedRequest, error) {
	words, err := shellWords(cmd)
	if err != nil {
		return nil, err
	}
	cr := &capturedRequest{header: textproto.MIMEHeader{}, from: "curl"}
	var target string
	hasData := false
	for i := 1; i < len(words); i++ {
		w := words[i]
		next := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("curl flag %s needs a value", w)
			}
			i++
			return words[i], nil
		}
		switch w {
		case "-X", "--request":
			v, err := next()
			if err != nil {
				return nil, err
			}
			cr.method = v
		case "-H", "--header":
			v, err := next()
			if err != nil {
				return nil, err
			}
			k, val, ok := strings.Cut(v, ":")
			if !ok {
				return nil, fmt.Errorf("curl header %q has no colon", v)
			}
			cr.header.Add(strings.TrimSpace(k), strings.TrimSpace(val))
		case "-d", "--data", "--data-ascii", "--data-binary", "--data-raw":
			v, err := next()
			if err != nil {
				return nil, err
			}
			hasData = true
			if strings.HasPrefix(v, "@") && w != "--data-raw" {
				b, err := os.ReadFile(v[1:])
				if err != nil {
					return nil, err
				}
				if w != "--data-binary" { // curl -d @file strips CR and LF
					b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
				}
				v = string(b)
			}
			if len(cr.body) > 0 {
				cr.body = append(cr.body, '&')
			}
			cr.body = append(cr.body, v...)
		case "-s", "--silent", "-S", "-v", "--verbose", "-i", "--include", "-k", "--insecure", "--compressed", "-L", "--location":
		default:
			if strings.HasPrefix(w, "-") {
				return nil, fmt.Errorf("curl flag %s is not understood by verify-request", w)
			}
			target = w
		}
	}
	if target == "" {
		return nil, errors.New("the curl command has no URL")
	}
	if cr.method == "" {
		cr.method = "GET"
		if hasData {
			cr.method = "POST"
		}
	}
	if hasData && cr.header.Get("Content-Type") == "" {
		cr.header.Set("Content-Type", "application/x-www-form-urlencoded") // curl's default
	}
	return cr, cr.setTarget(target)
}

// shellWords splits a POSIX shell command line: single and double quotes,
// backslash escapes and line continuations.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	r := bufio.NewReader(strings.NewReader(s))
	for {
		c, _, err := r.ReadRune()
		if err != nil {
			break
		}
		switch {
		case c == '\\':
			n, _, err := r.ReadRune()
			if err != nil {
				return nil, errors.New("command line ends with a backslash")
			}
			if n != '\n' {
				cur.WriteRune(n)
				inWord = true
			}
		case c == '\'':
			inWord = true
			for {
				n, _, err := r.ReadRune()
				if err != nil {
					return nil, errors.New("unterminated single quote")
				}
				if n == '\'' {
					break
				}
				cur.WriteRune(n)
			}
		case c == '"':
			inWord = true
			for {
				n, _, err := r.ReadRune()
				if err != nil {
					return nil, errors.New("unterminated double quote")
				}
				if n == '"' {
					break
				}
				if n == '\\' {
					m, _, _ := r.ReadRune()
					if !strings.ContainsRune(`"\$`+"`\n", m) {
						cur.WriteRune('\\')
					}
					if m != '\n' {
						cur.WriteRune(m)
					}
					continue
				}
				cur.WriteRune(n)
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
