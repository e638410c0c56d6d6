# shiftlock: see README.md. Everything here runs as root on Debian 12.
GO      ?= go
BIN     := bin
ROOTFS  ?=
export GOFLAGS ?= -buildvcs=false

.PHONY: all build demo test bench deps install uninstall clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

# The main job: a root-owned busybox rootfs (or ROOTFS=/path) run as an
# unprivileged container through idmapfs.
demo: deps build
	ROOTFS="$(ROOTFS)" ./scripts/demo.sh

# Installs the Debian packages the tests and demo need (idempotent).
deps:
	./scripts/deps.sh

test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 8m ./...
	./scripts/fuzz-short.sh

bench: deps build
	./scripts/bench.sh

# Installs idmapfs and its mount(8) helper (mount -t fuse.idmapfs, fstab),
# sedctl and sedsim.
install: build
	install -m 0755 $(BIN)/idmapfs $(BIN)/sedctl $(BIN)/sedsim /usr/local/bin/
	ln -sf /usr/local/bin/idmapfs /sbin/mount.fuse.idmapfs

uninstall:
	rm -f /usr/local/bin/idmapfs /usr/local/bin/sedctl /usr/local/bin/sedsim /sbin/mount.fuse.idmapfs

clean:
	-rm -rf $(BIN)
