package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"Apache License\n   Version 2.0, January 2004", "Apache-2.0"},
		{"Mozilla Public License, version 2.0", "MPL-2.0"},
		{"Permission is hereby granted, free of charge, to any person", "Expat"},
		{"Redistribution and use in source and binary forms ... Neither the name of Google", "BSD-3-clause"},
		{"Redistribution and use in source and binary forms, with or without\nmodification", "BSD-2-clause"},
		{"Permission to use, copy, modify, and/or distribute this software for any purpose", "ISC"},
	} {
		got, err := classify(tc.text)
		if err != nil || got != tc.want {
			t.Errorf("classify(%.40q) = %q, %v; want %q", tc.text, got, err, tc.want)
		}
	}
	if _, err := classify("All rights reserved."); err == nil {
		t.Error("an unknown license was classified")
	}
}

func TestCopyrightLines(t *testing.T) {
	text := "The MIT License\n\nCopyright (c) 2013 Armon Dadgar\n  Copyright 2009 The Go Authors.\nCopyright (c) 2013 Armon Dadgar\ncopyright notice, this list\n"
	got := copyrightLines(text)
	want := []string{"2013 Armon Dadgar", "2009 The Go Authors."}
	if !slices.Equal(got, want) {
		t.Errorf("copyrightLines = %q, want %q", got, want)
	}
}

func TestEscape(t *testing.T) {
	if got := escape("github.com/BurntSushi/toml"); got != "github.com/!burnt!sushi/toml" {
		t.Errorf("escape = %q", got)
	}
}

func TestField(t *testing.T) {
	got := field([]string{"first", "", "\tindented  "})
	if want := " first\n .\n     indented\n"; got != want {
		t.Errorf("field = %q, want %q", got, want)
	}
}

// TestRun_Moxxiectl writes the copyright file of moxxiectl: every module
// it links has a paragraph, and every paragraph is well formed.
func TestRun_Moxxiectl(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: the test builds moxxiectl with go build to read the modules it links")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go command on PATH to list the modules; install Go (CI has it)")
	}
	env, err := exec.Command(goCmd, "env", "GOMODCACHE", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	dirs := strings.Fields(string(env))
	bin := filepath.Join(t.TempDir(), "moxxiectl")
	build := exec.Command(goCmd, "build", "-o", bin, "github.com/moxxie/moxxie/cmd/moxxiectl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	header := filepath.Join(t.TempDir(), "header")
	if err := os.WriteFile(header, []byte("Format: x\n\nFiles: *\nCopyright: us\nLicense: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := run(&b, header, dirs[0], dirs[1], []string{bin}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Files: go/*\n", "Files: vendor/github.com/spf13/cobra/*\n", "License: Apache-2.0\n On Debian systems"} {
		if !strings.Contains(out, want) {
			t.Errorf("copyright lacks %q", want)
		}
	}
	for i, para := range strings.Split(out, "\n\n") {
		for _, line := range strings.Split(strings.TrimRight(para, "\n"), "\n") {
			if line == "" || (line[0] != ' ' && !strings.Contains(line, ":")) {
				t.Fatalf("paragraph %d: bad line %q", i, line)
			}
		}
	}
}
