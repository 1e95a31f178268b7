package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/joho/godotenv"
)

var update = flag.Bool("update", false, "rewrite .env.example from Variables")

// envExamplePath is .env.example at the repository root.
var envExamplePath = filepath.Join("..", "..", ".env.example")

// TestLoadReadsExactlyVariables records the names Load asks the environment
// for: each must be documented in Variables, and each documented variable
// must be read.
func TestLoadReadsExactlyVariables(t *testing.T) {
	var read []string
	getenv := func(name string) string {
		if !slices.Contains(read, name) {
			read = append(read, name)
		}
		return ""
	}
	if _, err := Load(getenv, ""); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, v := range Variables {
		documented = append(documented, v.Name)
	}
	slices.Sort(read)
	slices.Sort(documented)
	if diff := cmp.Diff(documented, read); diff != "" {
		t.Errorf("variables read by Load vs Variables (-documented +read):\n%s", diff)
	}
}

func TestVariablesWellFormed(t *testing.T) {
	seen := map[string]bool{}
	lastGroup := 0
	for _, v := range Variables {
		if seen[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		seen[v.Name] = true
		g := slices.Index(Groups, v.Group)
		switch {
		case g < 0:
			t.Errorf("%s: group %q is not in Groups", v.Name, v.Group)
		case g < lastGroup:
			t.Errorf("%s: group %q out of order", v.Name, v.Group)
		default:
			lastGroup = g
		}
		if v.Description == "" || !strings.HasSuffix(v.Description, ".") {
			t.Errorf("%s: description %q should be a sentence", v.Name, v.Description)
		}
	}
	var secrets []string
	for _, v := range Variables {
		if v.Secret {
			secrets = append(secrets, v.Name)
		}
	}
	if diff := cmp.Diff([]string{"KAFKA_SASL_PASSWORD", "ADMIN_TOKEN"}, secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
}

// envExample renders .env.example from Variables.
func envExample() []byte {
	var b bytes.Buffer
	b.WriteString(`# Configuration of orderd, the order processing service.
#
# Copy this file to .env and change what you need; the process environment
# wins over .env. Every value below is the default.
# Lists take a JSON array (["a","b"]) or comma-separated text (a,b).
# Booleans take True/False, true/false, TRUE/FALSE or 1/0.
# An empty value means the default, except for LOG_FILE and EMBEDDED_KAFKA_DIR,
# where empty means "no file" and "memory only".
# Quote values containing $ or # with single quotes: KAFKA_SASL_PASSWORD='pa$$#word'.
#
# Generated from internal/config/variables.go by
#   go test ./internal/config -run TestEnvExample -update
`)
	for _, g := range Groups {
		fmt.Fprintf(&b, "\n# ---- %s ----\n", g)
		for _, v := range Variables {
			if v.Group != g {
				continue
			}
			fmt.Fprintf(&b, "\n# %s\n%s=%s\n", v.Description, v.Name, v.Default)
		}
	}
	return b.Bytes()
}

func TestEnvExample(t *testing.T) {
	want := envExample()
	if *update {
		if err := os.WriteFile(envExamplePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(envExamplePath)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/config -run TestEnvExample -update)", err)
	}

	// The names and defaults first, for a readable failure.
	values, err := godotenv.Parse(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("parsing .env.example: %v", err)
	}
	defaults := map[string]string{}
	for _, v := range Variables {
		defaults[v.Name] = v.Default
	}
	if diff := cmp.Diff(defaults, values); diff != "" {
		t.Errorf(".env.example variables and values vs Variables (-Variables +file):\n%s", diff)
	}

	if !bytes.Equal(got, want) {
		t.Errorf(".env.example is out of date; run go test ./internal/config -run TestEnvExample -update\n%s",
			cmp.Diff(string(want), string(got)))
	}

	// Used as the .env file, it must give the same configuration as nothing.
	c := mustLoad(t, env{}, envExamplePath)
	if diff := cmp.Diff(seedDefaults(), c, decimalEqual); diff != "" {
		t.Errorf("loading .env.example (-defaults +got):\n%s", diff)
	}
}
