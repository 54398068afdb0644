package mangen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func testTree() *cobra.Command {
	root := &cobra.Command{Use: "tool", Short: "A tool"}
	group := &cobra.Command{Use: "thing", Short: "Manage things"}
	group.AddCommand(&cobra.Command{Use: "list", Short: "List things", Run: func(*cobra.Command, []string) {}})
	root.AddCommand(group, &cobra.Command{Use: "secret", Hidden: true, Run: func(*cobra.Command, []string) {}})
	return root
}

func TestGenerate_OnePagePerCommand(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(testTree(), dir, "1700000000"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"tool-thing-list.1", "tool-thing.1", "tool.1"}
	if !slices.Equal(names, want) {
		t.Fatalf("pages %v, want %v (hidden commands have none)", names, want)
	}
	page, err := os.ReadFile(filepath.Join(dir, "tool-thing-list.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`.TH "TOOL-THING-LIST" "1" "Nov 2023" "Moxxie" "Moxxie Manual"`, "List things"} {
		if !strings.Contains(string(page), s) {
			t.Errorf("page lacks %q:\n%s", s, page)
		}
	}
	if strings.Contains(string(page), "Auto generated") {
		t.Errorf("page carries cobra's history section:\n%s", page)
	}
}

func TestGenerate_Reproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := Generate(testTree(), dir, "1700000000"); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"tool.1", "tool-thing.1", "tool-thing-list.1"} {
		pa, _ := os.ReadFile(filepath.Join(a, name))
		pb, _ := os.ReadFile(filepath.Join(b, name))
		if string(pa) != string(pb) {
			t.Errorf("%s differs between two runs", name)
		}
	}
}

func TestGenerate_NeedsEpoch(t *testing.T) {
	for _, epoch := range []string{"", "yesterday"} {
		if err := Generate(testTree(), t.TempDir(), epoch); err == nil {
			t.Errorf("epoch %q: no error", epoch)
		}
	}
}
