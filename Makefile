# edgepack — build, test, lint, bench, demo.
CARGO ?= cargo

.PHONY: all build wasm assets tools test test-wasm lint lint-envoy fmt fmt-check bench bench-http demo demo-certs run-local run-store clean fuzz fuzz-build fuzz-smoke soak

all: build

# Cargo's target directory: CARGO_TARGET_DIR when set, as cargo reads it.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

## build: native binaries (the store sidecar) in release mode
build:
	$(CARGO) build --release -p edgepack-store

## wasm: the Envoy filter for wasm32-wasip1 (release)
wasm:
	$(CARGO) build --release --target wasm32-wasip1 -p edgepack-filter

## assets: the filter and the player page laid out as Envoy mounts them (/etc/envoy/edgepack)
assets: wasm tests/browser/node_modules
	mkdir -p target/edgepack/player
	cp $(TARGET_DIR)/wasm32-wasip1/release/edgepack_filter.wasm target/edgepack/
	cp envoy/player/index.html tests/browser/node_modules/hls.js/dist/hls.min.js \
	  tests/browser/node_modules/shaka-player/dist/shaka-player.compiled.js target/edgepack/player/

## tools: install what the tests need and is missing (apt packages, wasm targets, the wasm test
## runner); does nothing on a machine that has it all
tools:
	scripts/install-test-tools.sh

## test: installs what is missing, then formatting, lints and every test (unit + end-to-end with
## ffmpeg, core tests under wasm)
test: tools
	$(MAKE) fmt-check lint lint-envoy tests/browser/node_modules
	$(CARGO) test --workspace --all-targets
	$(MAKE) test-wasm
	$(MAKE) wasm
	# make bench runs the core's speed example as wasm under node: keep it building.
	$(CARGO) build --release --target wasm32-wasip1 -p edgepack-filter --example speed
	# make bench-http once in quick mode (this tree only, 1 s per row): keep it running.
	EDGEPACK_BENCH_QUICK=1 tests/benches/http.sh
	$(MAKE) fuzz-smoke
	@ls -l $(TARGET_DIR)/wasm32-wasip1/release/edgepack_filter.wasm

## hls.js and playwright-core for the browser test (Debian's chromium is the browser)
tests/browser/node_modules: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@

## test-wasm: the filter core's tests compiled to wasm32-unknown-unknown, run under node
## (needs wasm-bindgen-test-runner of the wasm-bindgen version in Cargo.lock; .ci/run installs it)
test-wasm:
	$(CARGO) test -p edgepack-filter --target wasm32-unknown-unknown --lib

## fuzz-build: the libFuzzer targets in fuzz/ (cargo-fuzz layout) with coverage instrumentation —
## the flags `cargo fuzz build -s none` passes, on the stable toolchain: no nightly, no sanitizer
## (the code under test is safe Rust; overflow checks and debug assertions are on)
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing
fuzz-build:
	cd fuzz && RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build --release --locked \
	  --target x86_64-unknown-linux-gnu --bins --target-dir target

## fuzz-smoke: every fuzz target for FUZZ_SMOKE_SECONDS (default 4) over its corpus (part of make test)
FUZZ_SMOKE_SECONDS ?= 4
fuzz-smoke: fuzz-build
	fuzz/run.sh smoke $(FUZZ_SMOKE_SECONDS)

## fuzz: every fuzz target (or FUZZ_TARGETS) for FUZZ_SECONDS (default 600) or FUZZ_RUNS executions,
## FUZZ_JOBS at once; new coverage is merged into fuzz/corpus/, each run is logged in
## fuzz/executions.tsv
FUZZ_SECONDS ?= 600
fuzz: fuzz-build
	fuzz/run.sh long $(FUZZ_SECONDS) $(FUZZ_TARGETS)

## lint: clippy on all targets, natively and for the wasm target, warnings are errors
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 -p edgepack-filter -- -D warnings
	cd fuzz && $(CARGO) clippy --locked --bins -- -D warnings

## lint-envoy: every envoy/*.yaml loads strictly through Envoy's v3 API types (PyPI
## envoy-data-plane, in .venv), every envoy/istio/*.yaml through Istio's (cloudcoil-models-istio),
## and each embedded plugin configuration passes the filter's own validator;
VENV := .venv
$(VENV)/.installed: envoy/requirements.txt tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r envoy/requirements.txt -r tests/requirements.txt
	@touch $@

## and docker-compose.yml is loaded by Docker Compose v2 and checked against envoy.yaml, the
## Dockerfile and the store configuration (envoy/check_compose.py)
lint-envoy: $(VENV)/.installed
	$(VENV)/bin/python envoy/check_envoy_config.py --self-test envoy/envoy.yaml \
	  envoy/ecds/edgepack_filter.yaml envoy/istio/wasmplugin.yaml
	$(VENV)/bin/python envoy/check_envoy_config.py target/envoy-check \
	  envoy/*.yaml envoy/ecds/*.yaml envoy/istio/*.yaml
	$(CARGO) run -q -p edgepack-filter --example check_config -- target/envoy-check/*.json
	$(VENV)/bin/python envoy/check_compose.py --self-test envoy/docker-compose.yml \
	  $(foreach f,$(DEMO_CERTS),--generated $(f))
	for c in envoy/edgepack-store*.toml; do EDGEPACK_NEWS_INPUT1_PASSWORD=x \
	  EDGEPACK_NEWS_INPUT2_PASSWORD=x $(CARGO) run -q -p edgepack-store -- --check --config $$c \
	  || exit 1; done

fmt:
	$(CARGO) fmt --all
	cd fuzz && $(CARGO) fmt

fmt-check:
	$(CARGO) fmt --all -- --check
	cd fuzz && $(CARGO) fmt -- --check

## bench: every benchmark, then one summary table (name, figure, baseline, ratio)
BENCH_SUMMARY := $(CURDIR)/target/bench-summary.tsv
bench:
	@mkdir -p target && rm -f $(BENCH_SUMMARY)
	EDGEPACK_BENCH_SUMMARY=$(BENCH_SUMMARY) $(CARGO) bench -p edgepack-filter --bench core
	EDGEPACK_BENCH_SUMMARY=$(BENCH_SUMMARY) $(CARGO) bench -p edgepack-store --bench ingest
	EDGEPACK_BENCH_SUMMARY=$(BENCH_SUMMARY) $(CARGO) bench -p edgepack-store --bench edge
	EDGEPACK_BENCH_SUMMARY=$(BENCH_SUMMARY) $(CARGO) bench -p edgepack-tests --bench filter_in_host
	EDGEPACK_BENCH_SUMMARY=$(BENCH_SUMMARY) tests/benches/http.sh
	@echo; echo "edgepack benchmarks, $$(nproc) cores, one run ($$(date -u +%F))"; \
	{ printf 'benchmark\tfigure\tbaseline\tratio\n'; cat $(BENCH_SUMMARY); } | \
	  awk -F'\t' '{ printf "%-68s %-12s %-12s %s\n", $$1, $$2, $$3, $$4 }'

## bench-http: the wrk section of make bench alone — this tree against the commit issue #13 was
## filed at, server pinned to core 0 and wrk to core 1 (tests/benches/http.sh says what it measures)
bench-http:
	@mkdir -p target && rm -f $(BENCH_SUMMARY)
	EDGEPACK_BENCH_SUMMARY=$(BENCH_SUMMARY) tests/benches/http.sh
	@{ printf 'benchmark\tfigure\tbaseline\tratio\n'; cat $(BENCH_SUMMARY); } | \
	  awk -F'\t' '{ printf "%-68s %-12s %-12s %s\n", $$1, $$2, $$3, $$4 }'

## soak: 10 minutes of live ingest on both inputs (one failover) and 1,000 simulated viewers over
## every endpoint kind through the test host (4 worker VMs); prints latency per kind, non-2xx by
## cause, RSS and VM memory every 10 s (EDGEPACK_SOAK_SECONDS, EDGEPACK_SOAK_VIEWERS to change);
## then 10,000 tiny PUTs beside a good encoder (store-sidecar/tests/abusive_ingest.rs)
soak:
	$(CARGO) bench -p edgepack-tests --bench soak
	$(CARGO) test -p edgepack-store --test abusive_ingest -- --ignored --nocapture

## demo: docker compose demo (Envoy + sidecar + two encoders + player page); needs only Docker
## (with the compose plugin) and openssl
DEMO_CERTS := envoy/certs/demo.crt envoy/certs/demo.key
demo: demo-certs
	@docker compose version >/dev/null 2>&1 || { \
	  echo "make demo needs Docker with the compose plugin ('docker compose version' failed)."; \
	  echo "Without Docker: make run-local"; exit 1; }
	docker compose -f envoy/docker-compose.yml up --build

## demo-certs: a self-signed certificate for localhost, made here so no private key is committed.
## The key is world-readable on purpose: Envoy's image runs as its own user (uid 101). Demo only.
demo-certs: $(DEMO_CERTS)
$(DEMO_CERTS):
	mkdir -p envoy/certs
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
	  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	  -keyout envoy/certs/demo.key -out envoy/certs/demo.crt
	chmod 0644 envoy/certs/demo.key

## run-local: the demo without Docker or Envoy — store sidecar, the proxy-wasm test host with the
## filter and envoy.yaml's configuration, two ffmpeg encoders; prints the URLs; Ctrl-C stops all
run-local: assets
	$(CARGO) build --release -p edgepack-store -p edgepack-host --bin edgepack-store --bin edgepack-host
	envoy/run-local.sh

## run-store: run the store sidecar with the example configuration
run-store:
	EDGEPACK_NEWS_INPUT2_PASSWORD=change-me-2 $(CARGO) run --release -p edgepack-store -- \
	  --config store-sidecar/edgepack-store.example.toml

clean:
	$(CARGO) clean
