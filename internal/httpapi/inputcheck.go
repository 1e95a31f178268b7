package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orderd/orderd/internal/order"
)

// maxJSONDepth bounds the nesting of a request body; the deepest body a
// route takes (an order's items) nests three levels.
const maxJSONDepth = 64

// checkInput answers 400 to requests carrying text that no id or value may
// hold, before any route sees them: a path or query that is not valid UTF-8
// or holds a NUL, and a JSON body that is not valid UTF-8, holds a NUL in a
// string, repeats a key in an object or nests deeper than maxJSONDepth.
// PostgreSQL refuses NUL and invalid UTF-8 text (the request would fail with
// a 500, or store on SQLite what PostgreSQL refuses); encoding/json quietly
// replaces invalid UTF-8 and keeps the last of repeated keys, so two parsers
// could read two different requests. Syntax errors are left to the routes.
func checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(format string, args ...any) {
			writeProblem(w, ruleProblem(r.Context(), http.StatusBadRequest, order.ReasonInvalid, fmt.Sprintf(format, args...)))
		}
		if msg := checkText(r.URL.Path); msg != "" {
			refuse("request path %s", msg)
			return
		}
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			refuse("query string: %v", err)
			return
		}
		for k, vs := range query {
			if msg := checkText(k); msg != "" {
				refuse("query parameter name %s", msg)
				return
			}
			for _, v := range vs {
				if msg := checkText(v); msg != "" {
					refuse("query parameter %s %s", truncateText(k), msg)
					return
				}
			}
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The server's ReadTimeout: a client that stalled mid-body.
			w.Header().Set("Connection", "close")
			writeProblem(w, newProblem(r.Context(), http.StatusRequestTimeout, ReasonTimeout,
				"the request body did not arrive in time"))
			return
		}
		if err != nil {
			refuse("request body: %v", err)
			return
		}
		if len(body) > MaxBodyBytes {
			// A body of unknown length (chunked) that turned out too large;
			// limitBody answered those that said so. Answered here, before
			// any route: one that takes no body would not read it, and act.
			w.Header().Set("Connection", "close")
			writeProblem(w, newProblem(r.Context(), http.StatusRequestEntityTooLarge, ReasonTooLarge,
				fmt.Sprintf("request body is over %d bytes", MaxBodyBytes)))
			return
		}
		if msg := checkJSON(body); msg != "" {
			refuse("request body %s", msg)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// checkText describes why s cannot be an id or a value ("" when it can).
func checkText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL character"
	}
	return ""
}

func truncateText(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// foldKey is the one form of every key that matches k whatever its case, as
// encoding/json matches names (strings.EqualFold: {"orderId":"A","ORDERID":
// "B"} sets one field twice): each letter as the least of the letters that
// fold to it (k, K and the Kelvin sign K all as K).
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, k)
}

// checkJSON describes why body is a hazardous JSON text ("" when it is not,
// or when it is not JSON at all, which the route reports itself).
func checkJSON(body []byte) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return ""
	}
	if !utf8.Valid(body) {
		return "is not valid UTF-8"
	}
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			return "" // malformed: the route says how
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return fmt.Sprintf("nests deeper than %d levels", maxJSONDepth)
				}
				f := &frame{object: t == '{', wantKey: t == '{'}
				if f.object {
					f.keys = map[string]struct{}{}
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].wantKey = true
				}
			}
		case string:
			if strings.IndexByte(t, 0) >= 0 {
				return fmt.Sprintf("holds a NUL character in the string %s", truncateText(t))
			}
			if top != nil && top.object && top.wantKey {
				key := foldKey(t)
				if _, dup := top.keys[key]; dup {
					return fmt.Sprintf("repeats the key %s in one object (keys match whatever their case)", truncateText(t))
				}
				top.keys[key] = struct{}{}
				top.wantKey = false
				continue
			}
			if top != nil && top.object {
				top.wantKey = true
			}
		default: // a number, boolean or null value
			if top != nil && top.object {
				top.wantKey = true
			}
		}
	}
}
