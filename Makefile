# pop3d: build, try and test.
#
#   make            static release binary for x86_64 (musl)        -> prints its path
#   make cross      static release binary for aarch64 (musl)       -> prints its path
#   make run        demo world + server on 127.0.0.1:1110 in the foreground
#   make test       install deps, tests on x86_64 and aarch64 (qemu), fmt, clippy
#   make image      stage a FROM-scratch image context in target/image/
#   make bench      bench/run.sh (when bench/ exists)
#   make clean
#
# Variables: CARGO, TARGET, CROSS_TARGET, LISTEN, CROSS_TEST_ARGS (see below).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:

# rustup installs cargo in ~/.cargo/bin, which a non-login shell may not have on PATH.
ifeq ($(shell command -v cargo 2>/dev/null),)
  export PATH := $(HOME)/.cargo/bin:$(PATH)
endif

CARGO        ?= cargo
TARGET       ?= x86_64-unknown-linux-musl
CROSS_TARGET ?= aarch64-unknown-linux-musl
# Arguments for the aarch64 (qemu) test run; empty = the whole suite.
# Narrow it if the suite grows too slow under emulation, e.g.
#   make test CROSS_TEST_ARGS='--test qemu_session'
CROSS_TEST_ARGS ?=
LISTEN       ?= 127.0.0.1:1110

BIN       := target/$(TARGET)/release/pop3d
CROSS_BIN := target/$(CROSS_TARGET)/release/pop3d
DEMO      := demo

.PHONY: build cross run demo test test-host test-cross lint deps image bench clean help

## build: fully static, stripped release binary (the release profile strips and LTOs)
build:
	$(CARGO) build --release --target $(TARGET)
	@ls -l $(BIN) | awk '{print $$5" bytes"}'
	@echo "$(BIN)"

## cross: the same for aarch64 (linked by rust-lld, see .cargo/config.toml and cross/)
cross:
	$(CARGO) build --release --target $(CROSS_TARGET)
	@ls -l $(CROSS_BIN) | awk '{print $$5" bytes"}'
	@echo "$(CROSS_BIN)"

## demo: (re)create demo/ (user demo, password demo, 5 messages)
demo:
	bash scripts/demo-world.sh

## run: serve the demo world in the foreground; Ctrl-C stops it
run: build demo
	@echo
	@echo "pop3d on $(LISTEN); in another terminal, read message 1 with:"
	@echo "  curl -s pop3://demo:demo@$(LISTEN)/1"
	@echo "(list with: curl -s pop3://demo:demo@$(LISTEN)/ ; 'make demo' refills the mailbox)"
	@echo
	exec $(BIN) -D -F --listen $(LISTEN) --spool $(DEMO)/spool \
	    --passwd $(DEMO)/passwd --shadow $(DEMO)/shadow --log stderr

## deps: install missing Rust targets and test tools (apt as root); build
## busybox with its inetd applet into target/peers (Debian's has none)
deps:
	bash scripts/install-deps.sh
	bash scripts/build-busybox-inetd.sh >/dev/null

## test: everything CI runs; stops at the first failure with a non-zero exit
test: deps test-host test-cross lint

## test-host / test-cross / lint: the parts of make test
test-host:
	$(CARGO) test --workspace --target $(TARGET)

# Under qemu-aarch64-static: the runner in .cargo/config.toml.
# The library's unit tests run one at a time under qemu: some of them spawn
# host tools (mkpasswd, openssl), and qemu-user can deadlock a fork() made
# while other emulated threads run (seen once: a child stuck for 20 minutes).
# The integration tests run as usual.
test-cross:
	$(CARGO) test --target $(CROSS_TARGET) --lib $(CROSS_TEST_ARGS) -- --test-threads=1
	$(CARGO) test --target $(CROSS_TARGET) --test '*' $(CROSS_TEST_ARGS)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## image: stage target/image/{Dockerfile,pop3d}; build it with docker where an engine runs
image: build
	rm -rf target/image
	mkdir -p target/image
	cp image/Dockerfile target/image/Dockerfile
	cp $(BIN) target/image/pop3d
	@echo "docker build -t pop3d target/image"

## bench: benchmarks against popa3d and Dovecot (bench/ comes later)
bench: build
	@if [ -x bench/run.sh ] || [ -f bench/run.sh ]; then \
	    bash bench/run.sh; \
	else \
	    echo "make bench: no bench/run.sh yet" >&2; exit 1; \
	fi

## clean: cargo clean and remove demo/
clean:
	$(CARGO) clean
	rm -rf $(DEMO)

help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
