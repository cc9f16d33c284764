# hsmgate — see README.md
GO       ?= go
BIN      := bin/hsmgate
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildTime=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# Fuzzing runs a fixed number of inputs, not a duration: with -fuzztime=<duration> Go's
# fuzz coordinator can report its own time limit as a failure ("context deadline exceeded").
FUZZ_API ?= 20000x
FUZZ_CODEC ?= 100000x
DIR      ?= .hsmgate
# Where tests write what a person may want to look at (the approver page's screenshot).
ARTIFACTS ?= $(CURDIR)/test-artifacts
LISTEN   ?= 127.0.0.1:8443

.PHONY: all deps test-deps build run test race unit fuzz bench lint clean

all: build

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hsmgate

## run: install what is missing, build, create the dev token/PKI/credentials and serve
run: deps build
	./$(BIN) dev --dir $(DIR) --listen $(LISTEN)

## test: every test (unit, end-to-end over HTTPS with SoftHSM2) plus short fuzzing
test: test-deps
	$(GO) vet ./...
	mkdir -p $(ARTIFACTS)
	HSMGATE_TEST_ARTIFACTS=$(ARTIFACTS) $(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzRequestDecoders$$' -fuzztime=$(FUZZ_API) ./api
	$(GO) test -run='^$$' -fuzz='^FuzzOAEPUnpad$$' -fuzztime=$(FUZZ_CODEC) ./keycodec
	$(GO) test -run='^$$' -fuzz='^FuzzECDSADERToRaw$$' -fuzztime=$(FUZZ_CODEC) ./keycodec

## race: every test again under the race detector (the end-to-end tests build the gateway with -race too)
race: test-deps
	$(GO) test -race -count=1 -timeout 30m ./...

## bench: raw PKCS#11 vs REST throughput and latency (a table and JSON)
bench: deps
	$(GO) run ./cmd/hsmgate-bench

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin
