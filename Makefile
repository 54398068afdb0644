# Moxxie build, test, benchmark and lint targets.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/moxxie/moxxie/version.Version=$(VERSION)

.PHONY: build test test-short bench lint fuzz deb clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The whole suite, as CI runs it (README: "Run the tests").
test:
	scripts/test

# Unit tests only: no process or cluster tests.
test-short:
	$(GO) test -short -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Every fuzz target in turn, FUZZTIME each (scripts/fuzz).
fuzz:
	scripts/fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Debian packages moxxie and moxxie-agent for each architecture, into
# $(DIST) (packaging/README.md).
DIST       ?= dist
DEB_ARCHES ?= amd64 arm64
deb:
	GO='$(GO)' DIST='$(DIST)' DEB_ARCHES='$(DEB_ARCHES)' packaging/build-deb

clean:
	rm -rf $(BIN)
