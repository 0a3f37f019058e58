# edgepack — build, test, lint, bench, demo.
CARGO ?= cargo

.PHONY: all build wasm test test-wasm lint lint-envoy fmt fmt-check bench demo run-store clean

all: build

## build: native binaries (the store sidecar) in release mode
build:
	$(CARGO) build --release -p edgepack-store

## wasm: the Envoy filter for wasm32-wasip1 (release)
wasm:
	$(CARGO) build --release --target wasm32-wasip1 -p edgepack-filter

## test: formatting, lints and every test (unit + end-to-end with ffmpeg, core tests under wasm)
test: fmt-check lint lint-envoy tests/browser/node_modules
	$(CARGO) test --workspace --all-targets
	$(MAKE) test-wasm
	$(MAKE) wasm
	@ls -l target/wasm32-wasip1/release/edgepack_filter.wasm

## hls.js and playwright-core for the browser test (Debian's chromium is the browser)
tests/browser/node_modules: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@

## test-wasm: the filter core's tests compiled to wasm32-unknown-unknown, run under node
## (needs wasm-bindgen-test-runner of the wasm-bindgen version in Cargo.lock; .ci/run installs it)
test-wasm:
	$(CARGO) test -p edgepack-filter --target wasm32-unknown-unknown --lib

## lint: clippy on all targets, natively and for the wasm target, warnings are errors
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 -p edgepack-filter -- -D warnings

## lint-envoy: every envoy/*.yaml loads strictly through Envoy's v3 API types (PyPI
## envoy-data-plane, in .venv), and each embedded plugin JSON passes the filter's own validator
VENV := .venv
$(VENV)/.installed: envoy/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r envoy/requirements.txt
	@touch $@

lint-envoy: $(VENV)/.installed
	$(VENV)/bin/python envoy/check_envoy_config.py --self-test envoy/envoy.yaml
	$(VENV)/bin/python envoy/check_envoy_config.py target/envoy-check envoy/*.yaml
	$(CARGO) run -q -p edgepack-filter --example check_config -- target/envoy-check/*.json

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

## bench: every benchmark, printed as figures
bench:
	$(CARGO) bench -p edgepack-filter --bench core
	$(CARGO) bench -p edgepack-store --bench ingest
	$(CARGO) bench -p edgepack-tests --bench filter_in_host

## demo: docker compose demo (Envoy + sidecar + encoder + player)
demo:
	@if [ ! -f envoy/docker-compose.yml ]; then \
	  echo "make demo: envoy/docker-compose.yml does not exist yet (issue #5); use 'make run-store' for the sidecar alone"; \
	  exit 1; \
	fi
	docker compose -f envoy/docker-compose.yml up --build

## run-store: run the store sidecar with the example configuration
run-store:
	EDGEPACK_NEWS_INPUT2_PASSWORD=change-me-2 $(CARGO) run --release -p edgepack-store -- \
	  --config store-sidecar/edgepack-store.example.toml

clean:
	$(CARGO) clean
