# shiftlock: see README.md. Everything here runs as root on Debian 12.
GO      ?= go
BIN     := bin
ROOTFS  ?=
export GOFLAGS ?= -buildvcs=false

.PHONY: all build demo test test-unit test-mounted fuzz bench deps clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The main job: a root-owned busybox rootfs (or ROOTFS=/path) run as an
# unprivileged container through idmapfs.
demo: build
	ROOTFS="$(ROOTFS)" ./scripts/demo.sh

# Installs the Debian packages the tests and demo need (idempotent).
deps:
	./scripts/deps.sh

test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 8m ./...
	./scripts/fuzz-short.sh

bench: build
	./scripts/bench.sh

clean:
	-rm -rf $(BIN)
