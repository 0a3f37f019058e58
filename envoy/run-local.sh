#!/usr/bin/env bash
# `make run-local`: edgepack without Docker or Envoy. Starts the store sidecar, the proxy-wasm test
# host (NOT Envoy) running the filter with envoy/envoy.yaml's configuration, and two ffmpeg
# encoders pushing to both inputs; prints the URLs; Ctrl-C stops everything it started.
# Expects `make run-local` to have built target/release/{edgepack-store,edgepack-host} and staged
# target/edgepack/ (the filter and the player page, laid out as Envoy mounts them).
# The environment can move everything (the tests do, to use free ports and their own builds):
#   EDGEPACK_PORT (10000), EDGEPACK_ADMIN_PORT (9901), EDGEPACK_INGEST_PORT (8080),
#   EDGEPACK_INTERNAL_PORT (8081, envoy.yaml's store cluster), EDGEPACK_BIN_DIR (target/release),
#   EDGEPACK_ASSETS (target/edgepack), EDGEPACK_RUN_DIR (target/run-local: config, data, logs)
set -euo pipefail
cd "$(dirname "$0")/.."

port="${EDGEPACK_PORT:-10000}"
admin="${EDGEPACK_ADMIN_PORT:-9901}"
ingest="${EDGEPACK_INGEST_PORT:-8080}"
internal="${EDGEPACK_INTERNAL_PORT:-8081}"
bin="${EDGEPACK_BIN_DIR:-target/release}"
assets="${EDGEPACK_ASSETS:-target/edgepack}"
run="${EDGEPACK_RUN_DIR:-target/run-local}"
mkdir -p "$run"
# The demo store configuration, bound to loopback, data kept in the run directory.
sed -e "s#0.0.0.0:8080#127.0.0.1:${ingest}#" -e "s#127.0.0.1:8081#127.0.0.1:${internal}#" \
  -e "s#/var/lib/edgepack#${run}/data#" envoy/edgepack-store.toml >"$run/edgepack-store.toml"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping: ${pids[*]}"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

export EDGEPACK_NEWS_INPUT1_PASSWORD=demo-input-1 EDGEPACK_NEWS_INPUT2_PASSWORD=demo-input-2
"$bin/edgepack-store" --config "$run/edgepack-store.toml" >"$run/store.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:${internal}/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:${internal}/healthz" >/dev/null || {
  echo "the store did not start; see $run/store.log" >&2
  cat "$run/store.log" >&2
  exit 1
}

"$bin/edgepack-host" --bootstrap envoy/envoy.yaml --map-dir "/etc/envoy/edgepack=${assets}" \
  --cluster "edgepack_store=127.0.0.1:${internal}" \
  --listen "127.0.0.1:${port}" --admin "127.0.0.1:${admin}" >"$run/host.log" 2>&1 &
pids+=($!)

for input in 1 2; do
  EDGEPACK_INGEST="http://127.0.0.1:${ingest}" EDGEPACK_INPUT=$input \
    EDGEPACK_USERNAME="enc${input}" EDGEPACK_PASSWORD="demo-input-${input}" \
    bash envoy/encoder.sh >"$run/encoder-${input}.log" 2>&1 &
  pids+=($!)
done

# Compiling the .wasm takes a few seconds (longer with a debug build of the host).
for _ in $(seq 600); do
  grep -q "edgepack-host listening" "$run/host.log" && break
  kill -0 "${pids[1]}" 2>/dev/null || break
  sleep 0.1
done
grep -q "edgepack-host listening" "$run/host.log" || {
  echo "the test host did not start:" >&2
  cat "$run/host.log" >&2
  exit 1
}

cat <<EOF

edgepack is running locally (store sidecar + proxy-wasm test host + two ffmpeg encoders).
Segments appear after ~4 s.

  player page        http://127.0.0.1:${port}/
  clear HLS          http://127.0.0.1:${port}/out/v1/news/hls/index.m3u8
  AES-128 HLS        http://127.0.0.1:${port}/out/v1/news/secure/index.m3u8
  CMAF HLS           http://127.0.0.1:${port}/out/v1/news/cmaf/index.m3u8
  filter metrics     http://127.0.0.1:${admin}/stats/prometheus
  store status       http://127.0.0.1:${internal}/store/v1/news/status
  store metrics      http://127.0.0.1:${internal}/metrics
  ingest (your own encoder)  http://enc1:demo-input-1@127.0.0.1:${ingest}/in/v1/news/1/…

  play with ffplay:  ffplay http://127.0.0.1:${port}/out/v1/news/secure/index.m3u8
  fail over:         kill $(echo "${pids[2]}")   (encoder of input 1)
  logs:              $run/*.log

Ctrl-C stops everything.
EOF
wait
