package config

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

const readmePath = "../../README.md"

const (
	tableStart = "<!-- config-table:start (generated: go test ./internal/config -run TestReadmeTable -update) -->\n"
	tableEnd   = "<!-- config-table:end -->\n"
)

// readmeTable renders Variables as the README's configuration table.
func readmeTable() string {
	var b strings.Builder
	b.WriteString(tableStart)
	for _, g := range Groups {
		fmt.Fprintf(&b, "\n**%s**\n\n| Variable | Default | Description |\n|---|---|---|\n", g)
		for _, v := range Variables {
			if v.Group != g {
				continue
			}
			def := "`" + v.Default + "`"
			if v.Default == "" {
				def = "(empty)"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Description, "|", "\\|"))
		}
	}
	b.WriteString("\n" + tableEnd)
	return b.String()
}

// TestReadmeTable keeps the README's configuration table equal to Variables.
func TestReadmeTable(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(readme, []byte(tableStart))
	end := bytes.Index(readme, []byte(tableEnd))
	if start < 0 || end < start {
		t.Fatalf("README.md has no configuration table markers %q … %q", tableStart, tableEnd)
	}
	want := readmeTable()
	got := string(readme[start : end+len(tableEnd)])
	if got == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, readme[:start]...), want...), readme[end+len(tableEnd):]...)
		if err := os.WriteFile(readmePath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md configuration table is out of date; run go test ./internal/config -run TestReadmeTable -update")
}
