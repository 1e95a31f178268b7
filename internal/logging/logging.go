// Package logging builds the service's slog logger, the Go form of the seed's
// "Logging Service": levels debug, info, warning, error and critical; one text
// line per record on stderr, coloured by level when stderr is a terminal, or
// JSON; and records at error and above also appended to a file.
//
// The error file always receives plain text lines without colour, whatever
// the console format, so that it reads the same with tail or grep in every
// environment.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// LevelCritical is the seed's critical level, above slog.LevelError.
const LevelCritical = slog.LevelError + 4

// Options configure New.
type Options struct {
	Level  string    // debug, info, warning, error or critical; "" = info
	Format string    // text or json; "" = text
	File   string    // file that error and critical records are appended to; "" = none
	Stderr io.Writer // console output; nil = os.Stderr
	Color  bool      // colour the level in text output (the caller checks for a terminal)
}

// New returns a logger writing to opts.Stderr in opts.Format at opts.Level and
// above, and, when opts.File is set, appending records at error level and
// above (or opts.Level, if higher) to that file as plain text. Closing the
// returned io.Closer closes the file; it is safe to call more than once.
func New(opts Options) (*slog.Logger, io.Closer, error) {
	level := slog.LevelInfo
	if opts.Level != "" {
		l, err := ParseLevel(opts.Level)
		if err != nil {
			return nil, nil, err
		}
		level = l
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}

	var console slog.Handler
	switch strings.ToLower(strings.TrimSpace(opts.Format)) {
	case "", "text":
		console = newTextHandler(stderr, level, opts.Color)
	case "json":
		console = newJSONHandler(stderr, level)
	default:
		return nil, nil, fmt.Errorf("logging: unknown format %q: want text or json", opts.Format)
	}

	if opts.File == "" {
		return slog.New(console), nopCloser{}, nil
	}
	f, err := os.OpenFile(opts.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("logging: opening log file: %w", err)
	}
	fileLevel := max(level, slog.LevelError)
	h := fanout{console, newTextHandler(f, fileLevel, false)}
	return slog.New(h), &onceCloser{c: f}, nil
}

// Critical logs msg at LevelCritical, the seed's logger.critical.
func Critical(ctx context.Context, logger *slog.Logger, msg string, args ...any) {
	logger.Log(ctx, LevelCritical, msg, args...)
}

// ParseLevel returns the level called s: debug, info, warning (or warn),
// error or critical, in any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warning", "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "critical":
		return LevelCritical, nil
	}
	return 0, fmt.Errorf("unknown log level %q: want debug, info, warning, error or critical", s)
}

// LevelName returns the printed name of l: DEBUG, INFO, WARNING, ERROR or
// CRITICAL, with an offset for levels between them (INFO+2), as slog does.
func LevelName(l slog.Level) string {
	name, base := levelBand(l)
	if off := l - base; off != 0 {
		return fmt.Sprintf("%s%+d", name, int(off))
	}
	return name
}

func levelBand(l slog.Level) (string, slog.Level) {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG", slog.LevelDebug
	case l < slog.LevelWarn:
		return "INFO", slog.LevelInfo
	case l < slog.LevelError:
		return "WARNING", slog.LevelWarn
	case l < LevelCritical:
		return "ERROR", slog.LevelError
	default:
		return "CRITICAL", LevelCritical
	}
}

// ANSI colours per level band.
const (
	colorReset    = "\x1b[0m"
	colorDebug    = "\x1b[36m"   // cyan
	colorInfo     = "\x1b[32m"   // green
	colorWarning  = "\x1b[33m"   // yellow
	colorError    = "\x1b[31m"   // red
	colorCritical = "\x1b[1;31m" // bold red
)

func levelColor(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return colorDebug
	case l < slog.LevelWarn:
		return colorInfo
	case l < slog.LevelError:
		return colorWarning
	case l < LevelCritical:
		return colorError
	default:
		return colorCritical
	}
}

func newJSONHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(LevelName(l))
				}
			case slog.TimeKey:
				if t, ok := a.Value.Any().(time.Time); ok {
					a.Value = slog.TimeValue(t.UTC())
				}
			}
			return a
		},
	})
}

// fanout sends each record to every handler that is enabled for its level.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	g := make(fanout, len(f))
	for i, h := range f {
		g[i] = h.WithAttrs(attrs)
	}
	return g
}

func (f fanout) WithGroup(name string) slog.Handler {
	g := make(fanout, len(f))
	for i, h := range f {
		g[i] = h.WithGroup(name)
	}
	return g
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type onceCloser struct {
	once sync.Once
	c    io.Closer
	err  error
}

func (o *onceCloser) Close() error {
	o.once.Do(func() { o.err = o.c.Close() })
	return o.err
}
