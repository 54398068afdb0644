// Command debcopyright writes the Debian copyright file of a package
// (/usr/share/doc/PACKAGE/copyright, machine-readable format 1.0) for the
// Go binaries it ships. The binaries are statically linked: besides Moxxie
// they contain the Go standard library and every module their build info
// lists, whose copyright notices and license texts have to travel with
// them. packaging/build-deb runs it; it is not shipped.
//
//	go run ./packaging/debcopyright -header packaging/deb/copyright \
//	    -modcache "$(go env GOMODCACHE)" -goroot "$(go env GOROOT)" BINARY...
package main

import (
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

func main() {
	header := flag.String("header", "", "the Moxxie part of the file: Format, Upstream and the Files: * paragraph")
	modcache := flag.String("modcache", "", "the Go module cache (go env GOMODCACHE)")
	goroot := flag.String("goroot", "", "the Go installation the binaries were built with (go env GOROOT)")
	flag.Parse()
	if *header == "" || *modcache == "" || *goroot == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: debcopyright -header FILE -modcache DIR -goroot DIR BINARY...")
		os.Exit(2)
	}
	if err := run(os.Stdout, *header, *modcache, *goroot, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "debcopyright:", err)
		os.Exit(1)
	}
}

// module is one Go module linked into the binaries.
type module struct {
	path, version string
	dir           string // where its source is: module cache or GOROOT
}

func run(w io.Writer, headerFile, modcache, goroot string, binaries []string) error {
	header, err := os.ReadFile(headerFile)
	if err != nil {
		return err
	}
	mods, err := linkedModules(binaries, modcache)
	if err != nil {
		return err
	}
	std := module{path: "std", dir: goroot}
	var b strings.Builder
	b.WriteString(strings.TrimRight(string(header), "\n") + "\n")
	used := map[string]bool{}
	for _, m := range append([]module{std}, mods...) {
		p, lic, err := paragraph(m)
		if err != nil {
			return err
		}
		used[lic] = true
		b.WriteString("\n" + p)
	}
	for _, lic := range []string{"Apache-2.0", "MPL-2.0"} {
		if used[lic] {
			fmt.Fprintf(&b, "\nLicense: %s\n On Debian systems, the full text of the %s license can be found in\n /usr/share/common-licenses/%s.\n", lic, lic, lic)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// linkedModules returns the modules the binaries' build info lists, each
// once, sorted by path, with their directory in the module cache.
func linkedModules(binaries []string, modcache string) ([]module, error) {
	seen := map[string]module{}
	for _, bin := range binaries {
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			if strings.HasPrefix(d.Path, "github.com/moxxie/moxxie") {
				continue
			}
			dir := filepath.Join(modcache, escape(d.Path)+"@"+escape(d.Version))
			seen[d.Path] = module{path: d.Path, version: d.Version, dir: dir}
		}
	}
	var mods []module
	for _, m := range seen {
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b module) int { return strings.Compare(a.path, b.path) })
	return mods, nil
}

// escape is the module cache's spelling of a path or version: capital
// letters become '!' and the lower-case letter.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// licenseFiles and noticeFiles are the names looked for in a module's
// top directory, in order.
var (
	licenseFiles = []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "License", "COPYING", "LICENCE"}
	noticeFiles  = []string{"NOTICE", "NOTICE.txt", "NOTICE.md"}
)

// paragraph returns the Files paragraph of one module and its license's
// short name.
func paragraph(m module) (string, string, error) {
	text, err := readFirst(m.dir, licenseFiles)
	if err != nil {
		return "", "", fmt.Errorf("%s: no license file in %s", m.path, m.dir)
	}
	notice, _ := readFirst(m.dir, noticeFiles)
	lic, err := classify(text)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", m.path, err)
	}
	holders := copyrightLines(text + "\n" + notice)
	if len(holders) == 0 {
		holders = []string{"The authors of " + m.path}
	}
	name, files := "Go module "+m.path+" "+m.version, "vendor/"+m.path+"/*"
	if m.path == "std" {
		name, files = "the Go standard library and runtime", "go/*"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Files: %s\n", files)
	fmt.Fprintf(&b, "Copyright: %s\n", strings.Join(holders, "\n "))
	if lic == "Apache-2.0" || lic == "MPL-2.0" {
		fmt.Fprintf(&b, "License: %s\n", lic)
	} else {
		fmt.Fprintf(&b, "License: %s\n%s", lic, field(strings.Split(strings.TrimSpace(text), "\n")))
	}
	comment := "Statically linked into the binaries: " + name + "."
	if notice != "" {
		comment += "\n\n" + strings.TrimSpace(notice)
	}
	lines := strings.Split(comment, "\n")
	fmt.Fprintf(&b, "Comment: %s\n%s", lines[0], field(lines[1:]))
	return b.String(), lic, nil
}

func readFirst(dir string, names []string) (string, error) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err == nil {
			return string(b), nil
		}
	}
	return "", os.ErrNotExist
}

// classify names a license text with its short name in the copyright
// format (https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/#license-specification).
func classify(text string) (string, error) {
	t := strings.Join(strings.Fields(text), " ")
	switch {
	case strings.Contains(t, "Apache License") && strings.Contains(t, "Version 2.0"):
		return "Apache-2.0", nil
	case strings.Contains(t, "Mozilla Public License") && strings.Contains(t, "2.0"):
		return "MPL-2.0", nil
	case strings.Contains(t, "Permission is hereby granted, free of charge"):
		return "Expat", nil
	case strings.Contains(t, "Redistribution and use in source and binary forms"):
		if strings.Contains(t, "Neither the name") || strings.Contains(t, "names of its contributors") ||
			strings.Contains(t, "name of the copyright holder") {
			return "BSD-3-clause", nil
		}
		return "BSD-2-clause", nil
	case strings.Contains(t, "Permission to use, copy, modify, and") && strings.Contains(t, "distribute this software for any"):
		return "ISC", nil
	}
	return "", errors.New("license not recognised: add it to classify")
}

var copyrightRe = regexp.MustCompile(`(?i)^\s*copyright\s*(\(c\)|©)?\s*(.*\d{4}.*)$`)

// copyrightLines returns the holders named in "Copyright ..." lines that
// carry a year, without the word Copyright, each once.
func copyrightLines(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		m := copyrightRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		h := strings.TrimSpace(m[2])
		h = strings.TrimPrefix(strings.TrimPrefix(h, "(c)"), "(C)")
		h = strings.TrimSpace(h)
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// field formats lines as the continuation lines of a field: each
// indented by one space, an empty line as " .".
func field(lines []string) string {
	var b strings.Builder
	for _, line := range lines {
		line = strings.TrimRightFunc(strings.ReplaceAll(line, "\t", "    "), unicode.IsSpace)
		if line == "" {
			line = "."
		}
		b.WriteString(" " + line + "\n")
	}
	return b.String()
}
