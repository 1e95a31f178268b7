package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func newLogger(t *testing.T, opts Options) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	opts.Stderr = &buf
	logger, closer, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := closer.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return logger, &buf
}

// logAll logs one record at each of the five levels, message = level name.
func logAll(logger *slog.Logger) {
	ctx := context.Background()
	logger.Debug("debug-msg")
	logger.Info("info-msg")
	logger.Warn("warning-msg")
	logger.Error("error-msg")
	Critical(ctx, logger, "critical-msg")
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{"INFO", slog.LevelInfo, false},
		{" warning ", slog.LevelWarn, false},
		{"warn", slog.LevelWarn, false},
		{"Error", slog.LevelError, false},
		{"critical", LevelCritical, false},
		{"", 0, true},
		{"verbose", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseLevel(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "want debug, info, warning, error or critical") {
					t.Errorf("error %q does not list the accepted levels", err)
				}
				return
			}
			if got != tt.want {
				t.Errorf("ParseLevel(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestLevelName(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, "DEBUG"},
		{slog.LevelInfo, "INFO"},
		{slog.LevelInfo + 2, "INFO+2"},
		{slog.LevelWarn, "WARNING"},
		{slog.LevelError, "ERROR"},
		{LevelCritical, "CRITICAL"},
		{LevelCritical + 1, "CRITICAL+1"},
		{slog.LevelDebug - 2, "DEBUG-2"},
	}
	for _, tt := range tests {
		if got := LevelName(tt.level); got != tt.want {
			t.Errorf("LevelName(%d) = %q, want %q", int(tt.level), got, tt.want)
		}
	}
}

func TestTextLineFormat(t *testing.T) {
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([a-z]+)-msg$`)
	logger, buf := newLogger(t, Options{Level: "debug"})
	logAll(logger)
	got := lines(buf.String())
	want := []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), buf)
	}
	for i, l := range got {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q does not match %v", l, line)
			continue
		}
		if m[1] != want[i] || strings.ToUpper(m[2]) != want[i] {
			t.Errorf("line %q: level %s, message %s-msg; want level %s", l, m[1], m[2], want[i])
		}
	}
}

func TestTextColor(t *testing.T) {
	colors := map[string]string{
		"DEBUG": colorDebug, "INFO": colorInfo, "WARNING": colorWarning,
		"ERROR": colorError, "CRITICAL": colorCritical,
	}
	for _, color := range []bool{true, false} {
		t.Run(map[bool]string{true: "color", false: "plain"}[color], func(t *testing.T) {
			logger, buf := newLogger(t, Options{Level: "debug", Color: color})
			logAll(logger)
			out := buf.String()
			if got := strings.Contains(out, "\x1b["); got != color {
				t.Fatalf("escape codes present = %v, want %v:\n%q", got, color, out)
			}
			if !color {
				return
			}
			for _, l := range lines(out) {
				matched := false
				for name, code := range colors {
					if strings.Contains(l, " "+code+name+colorReset+" ") {
						matched = true
					}
				}
				if !matched {
					t.Errorf("line %q has no coloured level", l)
				}
			}
		})
	}
}

func TestLevelFilter(t *testing.T) {
	tests := []struct {
		level string
		want  []string
	}{
		{"", []string{"info", "warning", "error", "critical"}},
		{"debug", []string{"debug", "info", "warning", "error", "critical"}},
		{"info", []string{"info", "warning", "error", "critical"}},
		{"warning", []string{"warning", "error", "critical"}},
		{"error", []string{"error", "critical"}},
		{"critical", []string{"critical"}},
	}
	for _, format := range []string{"text", "json"} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.level, func(t *testing.T) {
				logger, buf := newLogger(t, Options{Level: tt.level, Format: format})
				logAll(logger)
				var got []string
				for _, l := range lines(buf.String()) {
					for _, name := range []string{"debug", "info", "warning", "error", "critical"} {
						if strings.Contains(l, name+"-msg") {
							got = append(got, name)
						}
					}
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("logged levels (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestJSON(t *testing.T) {
	logger, buf := newLogger(t, Options{Level: "debug", Format: "json", Color: true})
	logAll(logger)
	want := []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
	got := lines(buf.String())
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), buf)
	}
	for i, l := range got {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		if rec["level"] != want[i] {
			t.Errorf("level = %v, want %s", rec["level"], want[i])
		}
		ts, _ := rec["time"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
			t.Errorf("time %q is not an RFC 3339 UTC time (%v)", ts, err)
		}
	}
	if strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("JSON output has escape codes")
	}
}

func TestErrorFile(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		want  []string // messages expected in the file
		color bool
	}{
		{"info level", Options{Level: "info"}, []string{"error-msg", "critical-msg"}, false},
		{"debug level, colour console", Options{Level: "debug", Color: true}, []string{"error-msg", "critical-msg"}, true},
		{"json console", Options{Format: "json"}, []string{"error-msg", "critical-msg"}, false},
		{"critical level", Options{Level: "critical"}, []string{"critical-msg"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "error.log")
			const earlier = "an earlier line\n"
			if err := os.WriteFile(path, []byte(earlier), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := tt.opts
			opts.File = path
			logger, console := newLogger(t, opts)
			logAll(logger)

			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			file := string(data)
			if !strings.HasPrefix(file, earlier) {
				t.Fatalf("file was not appended to:\n%s", file)
			}
			file = strings.TrimPrefix(file, earlier)
			var got []string
			for _, l := range lines(file) {
				if !regexp.MustCompile(`^\S+Z (ERROR|CRITICAL) [a-z]+-msg$`).MatchString(l) {
					t.Errorf("file line %q is not a plain text line at error or above", l)
				}
				got = append(got, l[strings.LastIndexByte(l, ' ')+1:])
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("file messages (-want +got):\n%s", diff)
			}
			// The console still gets everything at its level.
			if !strings.Contains(console.String(), "critical-msg") || (tt.opts.Level != "critical" && !strings.Contains(console.String(), "info-msg")) {
				t.Errorf("console output incomplete:\n%s", console)
			}
		})
	}
}

func TestErrorFileCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.log")
	logger, closer, err := New(Options{File: path, Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	logger.Error("boom")
	if err := closer.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := closer.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o644 != 0 || fi.Mode().Perm()&0o600 != 0o600 {
		t.Errorf("file mode = %v, want at most 0644 and owner read-write", fi.Mode().Perm())
	}
}

func TestWithAttrsAndGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "error.log")
	textLogger, text := newLogger(t, Options{File: path})
	jsonLogger, js := newLogger(t, Options{Format: "json"})

	for _, l := range []*slog.Logger{textLogger, jsonLogger} {
		l.With("a", 1).WithGroup("g").With("b", "two words").WithGroup("empty").Error("m", "c", 3)
		l.WithGroup("h").Info("n", slog.Group("inner", "d", true), "e", errors.New("bad thing"))
	}

	wantText := []string{
		`ERROR m a=1 g.b="two words" g.empty.c=3`,
		`INFO n h.inner.d=true h.e="bad thing"`,
	}
	if got := lines(text.String()); len(got) != len(wantText) {
		t.Fatalf("text output has %d lines, want %d:\n%s", len(got), len(wantText), text)
	}
	for i, l := range lines(text.String()) {
		if !strings.HasSuffix(l, wantText[i]) {
			t.Errorf("text line %q, want suffix %q", l, wantText[i])
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(string(data)); len(got) != 1 || !strings.HasSuffix(got[0], wantText[0]) {
		t.Errorf("file = %q, want one line ending %q", got, wantText[0])
	}

	wantJSON := []map[string]any{
		{"level": "ERROR", "msg": "m", "a": 1.0, "g": map[string]any{"b": "two words", "empty": map[string]any{"c": 3.0}}},
		{"level": "INFO", "msg": "n", "h": map[string]any{"inner": map[string]any{"d": true}, "e": "bad thing"}},
	}
	if got := lines(js.String()); len(got) != len(wantJSON) {
		t.Fatalf("JSON output has %d lines, want %d:\n%s", len(got), len(wantJSON), js)
	}
	for i, l := range lines(js.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		delete(rec, "time")
		if diff := cmp.Diff(wantJSON[i], rec); diff != "" {
			t.Errorf("JSON record %d (-want +got):\n%s", i, diff)
		}
	}
}

func TestTextQuoting(t *testing.T) {
	logger, buf := newLogger(t, Options{})
	logger.Info("two\nlines", "empty", "", "eq", "a=b", "plain", "x", "dur", 1500*time.Millisecond,
		"when", time.Date(2026, 1, 5, 11, 34, 53, 145e6, time.UTC))
	got := strings.TrimSuffix(buf.String(), "\n")
	want := ` INFO "two\nlines" empty="" eq="a=b" plain=x dur=1.5s when=2026-01-05T11:34:53.145Z`
	if strings.Count(got, "\n") != 0 || !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want suffix %q", got, want)
	}
}

// TestNeedsQuoting checks the byte-by-byte ASCII path of needsQuoting
// against the rule it implements, for every byte and for runes beyond ASCII.
func TestNeedsQuoting(t *testing.T) {
	rule := func(s string) bool {
		if s == "" {
			return true
		}
		for i, r := range s {
			if r == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
					return true
				}
			}
			if unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r) {
				return true
			}
		}
		return false
	}
	cases := []string{"", "plain", "order-1", "a b", "café", "naïve=1", "\u00a0", "x\u2028y", "\u200b",
		"\ufffd", "\xff", "ok\xc3", "日本語", "tab\there", "emoji 🙂", "🙂"}
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for _, s := range cases {
		if got, want := needsQuoting(s), rule(s); got != want {
			t.Errorf("needsQuoting(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestAppendValueScalars checks that numbers, bools and durations, which
// appendValue writes without a string in between, come out as slog.Value's
// String, quoted as appendString would (never, for these).
func TestAppendValueScalars(t *testing.T) {
	values := []slog.Value{
		slog.Int64Value(0), slog.Int64Value(-42), slog.Int64Value(math.MaxInt64), slog.Int64Value(math.MinInt64),
		slog.Uint64Value(math.MaxUint64), slog.Float64Value(1.5), slog.Float64Value(1e21), slog.Float64Value(-0.000001),
		slog.Float64Value(math.NaN()), slog.Float64Value(math.Inf(-1)), slog.BoolValue(true), slog.BoolValue(false),
		slog.DurationValue(0), slog.DurationValue(41 * time.Microsecond), slog.DurationValue(-90 * time.Minute),
	}
	for _, v := range values {
		if got, want := string(appendValue(nil, v)), string(appendString(nil, v.String())); got != want {
			t.Errorf("appendValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestConcurrentLinesIntact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "error.log")
	logger, buf := newLogger(t, Options{File: path})
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			l := logger.With("worker", w)
			for i := range each {
				l.Error("concurrent", "i", i)
			}
		})
	}
	wg.Wait()
	re := regexp.MustCompile(`^\S+ ERROR concurrent worker=\d+ i=\d+$`)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"console": buf.String(), "file": string(data)} {
		ls := lines(out)
		if len(ls) != workers*each {
			t.Errorf("%s: %d lines, want %d", name, len(ls), workers*each)
		}
		for _, l := range ls {
			if !re.MatchString(l) {
				t.Errorf("%s: mangled line %q", name, l)
				break
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"bad level", Options{Level: "loud"}, `unknown log level "loud"`},
		{"bad format", Options{Format: "xml"}, `unknown format "xml": want text or json`},
		{"unwritable file", Options{File: filepath.Join(t.TempDir(), "missing", "error.log")}, "opening log file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Stderr = &bytes.Buffer{}
			_, _, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkInfoLine measures one text line like the consumer's per-record
// "record handled" line.
func BenchmarkInfoLine(b *testing.B) {
	logger, _, err := New(Options{Stderr: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		logger.LogAttrs(ctx, slog.LevelInfo, "record handled",
			slog.String("correlation_id", "bench-1795700241479262425-pre-000123"),
			slog.String("event_id", "7f0c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"), slog.String("event", "OrderCreated"),
			slog.String("order_id", "bench-1795700241479262425-pre-000123"),
			slog.String("topic", "bench-postgres-1795700298617217041"), slog.Int("partition", 3),
			slog.Int64("offset", 123456), slog.Int("attempts", 1), slog.Duration("duration", 41*time.Microsecond))
	}
}
