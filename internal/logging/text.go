package logging

import (
	"context"
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// textHandler writes one line per record:
//
//	2026-01-05T11:34:53.145Z INFO message key=value group.key=value
//
// Time is UTC with milliseconds; values are quoted as slog.TextHandler quotes
// them; the level is coloured when color is set.
type textHandler struct {
	mu     *sync.Mutex // shared by the handlers derived from one output
	w      io.Writer
	level  slog.Leveler
	color  bool
	prefix string // open groups as a key prefix, "a.b."
	attrs  []byte // attributes added by WithAttrs, already formatted
}

func newTextHandler(w io.Writer, level slog.Leveler, color bool) *textHandler {
	return &textHandler{mu: new(sync.Mutex), w: w, level: level, color: color}
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 256)
	if !r.Time.IsZero() {
		buf = r.Time.UTC().AppendFormat(buf, timeFormat)
		buf = append(buf, ' ')
	}
	if h.color {
		buf = append(buf, levelColor(r.Level)...)
	}
	buf = append(buf, LevelName(r.Level)...)
	if h.color {
		buf = append(buf, colorReset...)
	}
	buf = append(buf, ' ')
	buf = appendMessage(buf, r.Message)
	buf = append(buf, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.prefix, a)
		return true
	})
	buf = append(buf, '\n')

	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf)
	return err
}

func (h *textHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.attrs = slices.Clip(h.attrs) // appending must not share the parent's array
	for _, a := range attrs {
		h2.attrs = appendAttr(h2.attrs, h.prefix, a)
	}
	return &h2
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

// appendMessage writes the message as is, unless it holds line breaks or
// other control characters, which would break the one-line-per-record rule.
func appendMessage(buf []byte, msg string) []byte {
	if strings.ContainsFunc(msg, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) {
		return strconv.AppendQuote(buf, msg)
	}
	return append(buf, msg...)
}

func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			buf = appendAttr(buf, p, ga)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendString(buf, prefix+a.Key)
	buf = append(buf, '=')
	return appendValue(buf, a.Value)
}

func appendValue(buf []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(buf, v.String())
	case slog.KindTime:
		return v.Time().UTC().AppendFormat(buf, timeFormat)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return appendString(buf, x.Error())
		case encoding.TextMarshaler:
			text, err := x.MarshalText()
			if err != nil {
				return appendString(buf, "!ERROR:"+err.Error())
			}
			return appendString(buf, string(text))
		case []byte:
			return appendString(buf, string(x))
		default:
			return appendString(buf, fmt.Sprintf("%+v", x))
		}
	case slog.KindInt64:
		return strconv.AppendInt(buf, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(buf, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(buf, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(buf, v.Bool())
	case slog.KindDuration:
		return append(buf, v.Duration().String()...)
	default:
		return appendString(buf, v.String())
	}
}

// appendString quotes s when slog.TextHandler would: when it is empty or has
// spaces, quotes, '=', non-printing characters or invalid UTF-8.
func appendString(buf []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

// needsQuoting reports whether appendString must quote s. ASCII, nearly all
// of what is logged, is judged byte by byte by the same rule as the other
// runes, without decoding it: decoding every rune was 5% of the service's
// CPU in a PostgreSQL drain's profile.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			// Space and control characters, DEL, '"' and '='.
			if b <= ' ' || b == 0x7f || b == '"' || b == '=' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
