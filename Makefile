# Magnetar build entry points. `make test` and `make bench` are the README's
# two set-up commands: both work on a brand-new machine.

GO        ?= go
BIN       := bin/magnetar
PKGS      := ./...
# Unit tests run with the race detector; the whole suite stays under 20 minutes
# on a 2-core machine. Long soak and crash loops run with MAGNETAR_LONG=1.
TESTFLAGS ?= -race -timeout 25m
REV       := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.revision=$(REV)

.PHONY: all build test test-invariants bench lint clean deps

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/magnetar

deps:
	@scripts/install-deps.sh

test: deps
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $$($(GO) list $(PKGS) | grep -v /e2e$$)
	# End-to-end tests of real processes; the official client they drive
	# races with itself on reconnect, so not under -race (see e2e/race_on_test.go).
	$(GO) test -timeout 10m ./e2e/
	$(GO) test -tags invariants -timeout 10m ./internal/bufs/... ./dispatcher/... ./managedledger/... ./ledgerstore/...

# The default scenario, two minutes at most; BENCH_ARGS="--url pulsar://host:6650 --runs 5" etc.
bench: build
	@scripts/bench.sh $(BENCH_ARGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags invariants $(PKGS)

clean:
	rm -rf bin data results/runs
	$(GO) clean -testcache
