# Orion: one command to run a node, one to test. Both do their own set-up on a fresh machine.
#
#   make up     build and start a single-node cluster (data in ./orion-data)
#   make test   format and lint checks, every test (real Docker engine), examples and benches once

CARGO ?= cargo
## A fresh clone gains nothing from incremental caches; they doubled target/'s size.
export CARGO_INCREMENTAL ?= 0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := protobuf-compiler busybox-static strace prometheus dnsutils tmux

## The Python tools of tests/openapi.rs, pinned, in a virtualenv the tests know (git-ignored).
TEST_VENV := .venv-tests
PYTHON_TOOLS := openapi-spec-validator==0.9.0 schemathesis==4.32.5

.PHONY: up test setup build lint check-fmt check-features unit examples bench-smoke bench

## Installs what the build and the tests need (protoc for containerd-client, a static busybox
## for the test images built without a registry, promtool from prometheus to check /metrics,
## dig for the DNS tests, python3-venv for the OpenAPI checkers in $(TEST_VENV), tmux for the
## `orion top` test).
setup:
	@missing=""; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v dig >/dev/null 2>&1 || missing="$$missing dnsutils"; \
	python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || missing="$$missing busybox-static"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@grep -qxF '$(PYTHON_TOOLS)' $(TEST_VENV)/installed 2>/dev/null || { \
	  echo "installing into $(TEST_VENV): $(PYTHON_TOOLS)"; \
	  python3 -m venv $(TEST_VENV) && $(TEST_VENV)/bin/pip install -q --disable-pip-version-check $(PYTHON_TOOLS) && \
	  echo '$(PYTHON_TOOLS)' > $(TEST_VENV)/installed; }

build: setup
	$(CARGO) build --release -p orion-bin

up: build
	./target/release/orion up

check-fmt:
	$(CARGO) fmt --all -- --check

## The facade's features are real: `core` alone must not pull in sled (`cargo tree`, no build).
check-features:
	@if $(CARGO) tree -p orion --no-default-features --features core -e normal | grep -q ' sled v'; then \
	  echo "orion --no-default-features --features core depends on sled; the sled feature is not optional"; exit 1; \
	fi
	@$(CARGO) tree -p orion --no-default-features --features core,sled -e normal | grep -q ' sled v' || \
	  { echo "orion --features sled does not bring sled in"; exit 1; }

lint: setup
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: setup
	$(CARGO) nextest run --workspace --all-features --no-fail-fast
	$(CARGO) test --workspace --all-features --doc

examples: setup
	$(CARGO) run --quiet --example embedded
	@dir=$$(mktemp -d) && \
	$(CARGO) run --quiet -p orion-netscore --example netsim -- generate --kind clustered --nodes 60 > $$dir/rtt.txt && \
	$(CARGO) run --quiet -p orion-netscore --example netsim -- vivaldi --rtt $$dir/rtt.txt --rounds 200 | tail -1 && \
	$(CARGO) run --quiet -p orion-netscore --example netsim -- placement --rtt $$dir/rtt.txt \
		--graph orion-netscore/examples/data/three-tier.json | tail -1 && \
	rm -r $$dir

## Compiles every bench (dev profile, sharing the test build) and runs each once in its quick mode
## (criterion's --test): a smoke test that they work, not a measurement.
bench-smoke: setup
	$(CARGO) bench --profile dev --workspace --all-features -- --test

## The real measurements (minutes); see docs/benchmarks.md.
bench: setup
	$(CARGO) bench --workspace --all-features

test: check-fmt check-features lint unit examples bench-smoke
