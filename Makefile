# Each target is a thin shim over the go tool and scripts/; see README.md.
GO        ?= go
BIN       ?= bin
PREFIX    ?= /usr/local
TOOLS     := $(notdir $(wildcard cmd/*))
MODULE    := github.com/artifactstore/artifact-store
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
export GOFLAGS ?= -trimpath

.PHONY: all build install test test-short lint type bench fuzz reliability demo dev migrate migrate-fresh clean

all: build

## build: every tool into ./bin/
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "-X $(MODULE)/internal/cli.version=$(VERSION)" -o $(BIN)/ ./cmd/...

## install: the tools into $(PREFIX)/bin
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(addprefix $(BIN)/,$(TOOLS)) $(DESTDIR)$(PREFIX)/bin/

## test: all tests, with a throwaway PostgreSQL cluster for the database tests
test: build
	ARTIFACTSTORE_TEST_REQUIRE_POSTGRES=1 ARTIFACTSTORE_TEST_STRICT=$${ARTIFACTSTORE_TEST_STRICT:-0} AS_BIN=$(CURDIR)/$(BIN) scripts/with-postgres.sh $(GO) test -count=1 ./...

## test-short: the tests that need no database server
test-short:
	$(GO) test -short ./...

## lint: gofmt, no tracked binaries or big files, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@scripts/check-tracked.sh
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## type: compile and vet everything
type:
	$(GO) build ./... && $(GO) vet ./...

## bench: Go benchmarks and the tool-versus-peer table (scripts/bench.sh)
bench: build
	scripts/bench.sh

## reliability: SIGKILLs, bad input, tampering, concurrency at full size, short fuzzing; ends with a table
reliability: build
	scripts/reliability.sh

## fuzz: each fuzz target for FUZZTIME (default 30s)
fuzz:
	scripts/fuzz.sh $${FUZZTIME:-30s}

clean:
	rm -rf $(BIN)

## demo: the main job on the embedded default (DIR=… to choose the directory)
demo: build
	scripts/demo.sh

## migrate: bring the configured database (ARTIFACTSTORE_DATABASE_URL) up to date
migrate: build
	$(BIN)/as-events migrate

## migrate-fresh: drop and re-create the configured database's schema (asks first; FORCE=1 does not)
migrate-fresh: build
	$(BIN)/as-events migrate --fresh $(if $(filter 1,$(FORCE)),--yes)

## dev: run as-serve (OCI registry /v2/, /health, /metrics) on 127.0.0.1:8000 with the embedded default (ADDR=… to change)
dev:
	scripts/dev.sh
