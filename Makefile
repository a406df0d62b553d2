# hotline: make run (demo on the embedded config), make test (installs test peers, runs everything).
GO      ?= go
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build run test test-deps vet fmt-check bench check-demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/hotline ./cmd/hotline

# Starts the switch on the embedded demo config (SIP 127.0.0.1:5060, data in ./var).
run: build
	./bin/hotline run

# Installs what the end-to-end tests need (sipp, baresip, sox, kamailio) when missing, then runs every test.
test: test-deps fmt-check vet
	$(GO) test -race -count=1 ./...

test-deps:
	bash scripts/install-test-deps.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

check-demo: build
	./bin/hotline check -c testdata/demo/hotline.toml

clean:
	rm -rf bin
