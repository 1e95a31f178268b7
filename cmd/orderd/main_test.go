package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHelp: a command's --help prints its usage once, to stdout, and exits 0
// without an error line; a bad flag prints the error and the usage, once, to
// stderr, and exits 2.
func TestHelp(t *testing.T) {
	getenv := func(string) (string, bool) { return "", false }
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantUsage string // printed once, to stdout when wantCode is 0, else to stderr
		wantErr   string // in stderr
	}{
		{name: "top-level --help", args: []string{"--help"}, wantUsage: "Usage:\n  orderd [serve]"},
		{name: "serve --help", args: []string{"serve", "--help"}, wantUsage: "Usage: orderd serve [flags]"},
		{name: "serve -h", args: []string{"serve", "-h"}, wantUsage: "Usage: orderd serve [flags]"},
		{name: "bare --help is serve's", args: []string{"-help"}, wantUsage: "Usage: orderd serve [flags]"},
		{name: "migrate --help", args: []string{"migrate", "--help"}, wantUsage: "Usage: orderd migrate [flags]"},
		{name: "broker --help", args: []string{"broker", "--help"}, wantUsage: "Usage: orderd broker [flags]"},
		{name: "produce --help", args: []string{"produce", "--help"}, wantUsage: "Usage: orderd produce [flags]"},
		{name: "version --help", args: []string{"version", "--help"}, wantUsage: "Usage: orderd version [flags]"},
		{name: "version", args: []string{"version"}, wantUsage: "orderd "},
		{name: "version extra argument", args: []string{"version", "extra"}, wantCode: 2,
			wantErr: `orderd: orderd version: unexpected argument "extra"`},
		{name: "produce bad flag", args: []string{"produce", "--nope"}, wantCode: 2,
			wantUsage: "Usage: orderd produce [flags]", wantErr: "flag provided but not defined: -nope"},
		{name: "migrate extra argument", args: []string{"migrate", "now"}, wantCode: 2,
			wantErr: `orderd: orderd migrate: unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, getenv, strings.NewReader(""), &stdout, &stderr)
			if code := exit(err, &stderr); code != tt.wantCode {
				t.Errorf("exit code = %d (err %v), want %d", code, err, tt.wantCode)
			}
			usageOut, otherOut := &stdout, &stderr
			if tt.wantCode != 0 {
				usageOut, otherOut = &stderr, &stdout
			}
			if tt.wantUsage != "" {
				if n := strings.Count(usageOut.String(), tt.wantUsage); n != 1 {
					t.Errorf("usage %q printed %d times, want once, in:\n%s", tt.wantUsage, n, usageOut)
				}
			}
			if tt.wantErr == "" && otherOut.Len() > 0 {
				t.Errorf("unexpected output:\n%s", otherOut)
			}
			if tt.wantCode == 0 && stderr.Len() > 0 {
				t.Errorf("stderr = %q, want nothing", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want %q in it", stderr.String(), tt.wantErr)
			}
		})
	}
}

// TestMigrateSaysWhatItApplied: orderd migrate on a fresh database says how
// many migrations it applied; run again, that the schema was up to date.
func TestMigrateSaysWhatItApplied(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"DATABASE_URL": "sqlite://" + filepath.Join(dir, "orders.db"),
		"LOG_FILE":     filepath.Join(dir, "error.log"),
	}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^applied [2-9][0-9]* migrations \(sqlite\); database schema is up to date\n$`),
		regexp.MustCompile(`^database schema is up to date \(sqlite\)\n$`),
	} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"migrate"}, getenv, strings.NewReader(""), &stdout, &stderr); err != nil {
			t.Fatalf("migrate: %v\n%s", err, stderr.String())
		}
		if !want.MatchString(stdout.String()) {
			t.Errorf("migrate printed %q, want it to match %s", stdout.String(), want)
		}
	}
}
