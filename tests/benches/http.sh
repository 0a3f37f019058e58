#!/usr/bin/env bash
# HTTP benchmarks with wrk (`make bench-http`, part of `make bench`). Prints figures and appends
# rows to the bench summary; never fails on timing, only when a step cannot run.
#
# In one run, the same requests against two builds:
#   before — edgepack at $EDGEPACK_BENCH_BASELINE_REV (default 51a9699, when issue #13 was filed),
#   after  — this working tree,
# each with the store sidecar and edgepack-host --workers 1 pinned to core 0 and wrk -t1 -c8 to
# core 1 (release-optimized natives, the shipped .wasm). Media: 2 s MPEG-TS segments of a 1.5 Mbit/s
# 360p and a 5 Mbit/s 1080p rendition encoded by ffmpeg (CBR: ~430 KB and ~1.3 MB), pushed to the
# sidecar's ingest API; playlists: histories of 2 min, 1 h, 24 h and 14 days made by the store's
# fabricate_history example (real segments cycled by hard links, not real time). Rows, before and after: AES-128 and clear segments
# through host + filter with every cache off (the work itself), the segment straight from the store,
# the 60 s live playlist per history length. After only: the same with the shipped defaults (shared
# segment cache warm, playlist cache), 1 vs 2 workers, the host's peak RSS at 100 concurrent 1.3 MB
# AES-128 requests, and `openssl speed -evp aes-128-cbc` on the server core as the ceiling.
#
# EDGEPACK_BENCH_QUICK=1 (what `make test` runs): after only, debug binaries, 1 s per row, 2 h at
# most of history — proves the script runs, measures nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
QUICK=${EDGEPACK_BENCH_QUICK:-0}
BASE_REV=${EDGEPACK_BENCH_BASELINE_REV:-51a9699}
# Cargo's target directory (CARGO_TARGET_DIR when set, as cargo itself reads it).
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$ROOT/target/bench-http
SUMMARY=${EDGEPACK_BENCH_SUMMARY:-$ROOT/target/bench-summary.tsv}
[ "$QUICK" = 1 ] && SUMMARY=$WORK/quick-summary.tsv && rm -f "$SUMMARY"
CARGO=${CARGO:-cargo}
if [ "$QUICK" = 1 ]; then DURATION=1s; else DURATION=${EDGEPACK_BENCH_SECONDS:-10}s; fi

if [ "$(nproc)" -ge 2 ]; then SERVER_CORE="taskset -c 0"; CLIENT_CORE="taskset -c 1"
else SERVER_CORE=""; CLIENT_CORE=""; echo "http bench: one core, nothing pinned" >&2; fi
for tool in wrk ffmpeg curl openssl taskset; do
  command -v $tool >/dev/null || { echo "http bench needs $tool (apt-get install $tool)" >&2; exit 1; }
done

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

rm -rf "$WORK/run" && mkdir -p "$WORK/run" "$WORK/media"

# --- builds -----------------------------------------------------------------------------------
# Natives in the bench profile (release without fat LTO, as filter_in_host; cargo puts it in
# target/release), the filter as shipped.
build() { # build SRC_DIR OUT_DIR HOST_PACKAGE
  local src=$1 out=$2 host_pkg=$3
  mkdir -p "$out"
  if [ "$QUICK" = 1 ]; then
    (cd "$src" && $CARGO build -q -p edgepack-store -p "$host_pkg" --bin edgepack-store --bin edgepack-host)
    cp "$TARGET/debug/edgepack-store" "$TARGET/debug/edgepack-host" "$out/"
  else
    (cd "$src" && $CARGO build -q --profile bench --target-dir "$TARGET" \
      -p edgepack-store -p "$host_pkg" --bin edgepack-store --bin edgepack-host)
    cp "$TARGET/release/edgepack-store" "$TARGET/release/edgepack-host" "$out/"
  fi
  (cd "$src" && $CARGO build -q --release --target-dir "$TARGET" --target wasm32-wasip1 -p edgepack-filter)
  cp "$TARGET/wasm32-wasip1/release/edgepack_filter.wasm" "$out/"
}
echo "http bench: building (after: this tree)" >&2
build "$ROOT" "$WORK/after" edgepack-host
if [ "$QUICK" = 1 ]; then
  $CARGO build -q -p edgepack-store --example fabricate_history
  HISTORY="$TARGET/debug/examples/fabricate_history"
else
  $CARGO build -q --profile bench -p edgepack-store --example fabricate_history
  HISTORY="$TARGET/release/examples/fabricate_history"
fi
if [ "$QUICK" != 1 ]; then
  echo "http bench: building (before: $BASE_REV)" >&2
  rm -rf "$WORK/before-src" && mkdir -p "$WORK/before-src"
  git archive "$BASE_REV" | tar -x -C "$WORK/before-src"
  # Before the store contract, the host was the tests crate's binary.
  build "$WORK/before-src" "$WORK/before" edgepack-tests
  # The shipped bins of this tree again (the before build replaced them in target/).
  build "$ROOT" "$WORK/after" edgepack-host
fi

# --- media ------------------------------------------------------------------------------------
encode() { # encode NAME SIZE KBITS
  local dir="$WORK/media/$1"
  [ -s "$dir/$1.m3u8" ] && return
  rm -rf "$dir" && mkdir -p "$dir"
  ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=$2:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 \
    -c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 \
    -b:v "${3}k" -minrate "${3}k" -maxrate "${3}k" -bufsize "${3}k" -x264-params nal-hrd=cbr \
    -c:a aac -b:a 96k -f hls -hls_time 2 -hls_list_size 0 \
    -hls_segment_filename "$dir/$1_%d.ts" "$dir/$1.m3u8"
}
encode low 640x360 1500
encode high 1920x1080 5000

# --- servers ----------------------------------------------------------------------------------
SECRET='"key": { "derived": { "secret": "0123456789abcdef0123" } }, "key_token": { "secret": "tok-0123456789abcdef" }'
endpoints() {
  cat <<EOF
"endpoints": {
  "hls": { "format": "hls", "manifest_window_seconds": 60 },
  "secure": { "format": "hls", "manifest_window_seconds": 60,
    "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 60, $SECRET } } }
EOF
}
filter_config() { # filter_config before|cold|defaults
  local store='"store": { "cluster": "edgepack_store" }' cache=''
  case $1 in
    cold) store='"store": { "cluster": "edgepack_store", "playlist_cache_ms": 0 }'
          cache='"cache": { "megabytes": 0 },' ;;
    defaults) ;;
  esac
  local channels='' c
  for c in live h2m h1h h24h d14; do
    channels="$channels${channels:+,} \"$c\": { $(endpoints) }"
  done
  echo "{ $store, $cache \"channels\": { $channels } }"
}

# Playlist histories (channels h2m, h1h, h24h, d14), made once per run into the store's data dir.
DATA="$WORK/run/data"
HOURS_24=24; HOURS_14D=336
[ "$QUICK" = 1 ] && { HOURS_24=1; HOURS_14D=2; }
histories() {
  local c hours
  for spec in h2m:0.0334 h1h:1 h24h:$HOURS_24 d14:$HOURS_14D; do
    c=${spec%%:*}; hours=${spec#*:}
    "$HISTORY" --store-dir "$DATA" --channel "$c" --renditions 1 --hours "$hours" \
      --segment-seconds 2 >&2
  done
}
store_toml() {
  echo "[server]
ingest_listen = \"127.0.0.1:0\"
internal_listen = \"127.0.0.1:0\"
data_dir = \"$DATA\""
  for c in live h2m h1h h24h d14; do
    echo "[[channel]]
id = \"$c\"
startover_window_seconds = 1209600
[[channel.input]]
username = \"enc1\"
password = \"bench-1\"
[[channel.input]]
username = \"enc2\"
password = \"bench-2\""
  done
}

# start_and_wait LOGFILE PATTERN CMD... : runs CMD on the server core, waits for its listening line
start_and_wait() {
  local log=$1 pattern=$2; shift 2
  $SERVER_CORE "$@" >"$log" 2>"$log.err" &
  PIDS+=($!)
  local pid=$!
  for _ in $(seq 1 600); do
    grep -q "$pattern" "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log.err" >&2; echo "http bench: $* exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "http bench: $* did not start" >&2; exit 1
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

STORE_PID=; HOST_PID=
start_store() { # start_store BIN_DIR
  store_toml >"$WORK/run/store.toml"
  start_and_wait "$WORK/run/store.log" "listening" "$1/edgepack-store" --config "$WORK/run/store.toml"
  STORE_PID=${PIDS[-1]}
  INGEST=$(field ingest "$WORK/run/store.log"); INTERNAL=$(field internal "$WORK/run/store.log")
}
start_host() { # start_host BIN_DIR CONFIG_KIND WORKERS
  filter_config "$2" >"$WORK/run/filter-$2.json"
  start_and_wait "$WORK/run/host.log" "listening" "$1/edgepack-host" --wasm "$1/edgepack_filter.wasm" \
    --config "$WORK/run/filter-$2.json" --cluster "edgepack_store=$INTERNAL" \
    --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers "$3"
  HOST_PID=${PIDS[-1]}
  EDGE=$(field http "$WORK/run/host.log")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

push() { # push RENDITION: the encoder's segments, then its playlist, to input 1 of channel live
  local r=$1 f
  for f in "$WORK/media/$r"/*.ts; do
    curl -sf -u enc1:bench-1 -T "$f" "http://$INGEST/in/v1/live/1/$(basename "$f")" >/dev/null
  done
  curl -sf -u enc1:bench-1 -T "$WORK/media/$r/$r.m3u8" "http://$INGEST/in/v1/live/1/$r.m3u8" >/dev/null
}

# --- measuring --------------------------------------------------------------------------------
# wrk_row URL CONNECTIONS: sets RATE (req/s), P50/P99 (ms), MBS (MB/s) or RATE=failed with why
wrk_row() {
  local url=$1 conns=${2:-8} out status
  RATE=failed; P50=; P99=; MBS=
  status=$(curl -s -o /dev/null -w '%{http_code}' "$url")
  if [ "$status" != 200 ]; then RATE=failed; WHY="HTTP $status"; return; fi
  out=$($CLIENT_CORE wrk -t1 -c"$conns" -d"$DURATION" --latency "$url")
  if grep -q "Non-2xx" <<<"$out"; then RATE=failed; WHY=$(grep -m1 "Non-2xx" <<<"$out"); return; fi
  RATE=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }
  P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  local size; size=$(curl -s "$url" | wc -c)
  MBS=$(awk -v r="$RATE" -v s="$size" 'BEGIN { printf "%.0f", r * s / 1e6 }')
  WHY=
}

# The rows measured on both builds: NAME<TAB>URL_PATH (on the edge) or store:PATH (on the sidecar)
ROWS=$(cat <<'EOF'
AES-128 TS segment ~430 KB, host + filter, caches off	/out/v1/live/secure/low/SEQ.ts
AES-128 TS segment ~1.3 MB, host + filter, caches off	/out/v1/live/secure/high/SEQ.ts
clear TS segment ~430 KB, host + filter, caches off	/out/v1/live/hls/low/SEQ.ts
the same segment straight from the store sidecar	store:/store/v1/live/low/SEQ.ts
live playlist (60 s window), 2 min of history	/out/v1/h2m/hls/stream_0/index.m3u8
live playlist (60 s window), 1 h of history	/out/v1/h1h/hls/stream_0/index.m3u8
live playlist (60 s window), 24 h of history	/out/v1/h24h/hls/stream_0/index.m3u8
live playlist (60 s window), 14 days of history	/out/v1/d14/hls/stream_0/index.m3u8
EOF
)
declare -A RESULT
measure_rows() { # measure_rows before|after
  local name path url
  while IFS=$'\t' read -r name path; do
    path=${path//SEQ/$SEQ}
    case $path in store:*) url="http://$INTERNAL${path#store:}" ;; *) url="http://$EDGE$path" ;; esac
    wrk_row "$url"
    RESULT["$1|$name"]="$RATE|$P50|$P99|$MBS|$WHY"
    printf '  %-6s %-62s %s\n' "$1" "$name" "${RATE} req/s p50 ${P50:-?} ms p99 ${P99:-?} ms ${WHY}" >&2
  done <<<"$ROWS"
}

# One build: sidecar with the histories and the pushed media, host with caches off, every row.
run_build() { # run_build before|after
  local bins="$WORK/$1"
  start_store "$bins"
  push low; push high
  SEQ=$(curl -sf "http://$INTERNAL/store/v1/live/low/index.m3u8" | grep -v '^#' | grep -m3 . | tail -1)
  SEQ=${SEQ%.ts}
  start_host "$bins" "$( [ "$1" = before ] && echo before || echo cold )" 1
  echo "http bench: $1 — store $INGEST/$INTERNAL, edge $EDGE, segment $SEQ" >&2
  measure_rows "$1"
}

rm -rf "$DATA"
echo "http bench: making histories (2 min, 1 h, $HOURS_24 h, $HOURS_14D h)" >&2
histories
if [ "$QUICK" != 1 ]; then
  run_build before
  stop "$HOST_PID"; stop "$STORE_PID"
fi
run_build after

# After only: the shipped defaults, workers, memory.
stop "$HOST_PID"
start_host "$WORK/after" defaults 1
curl -s -o /dev/null "http://$EDGE/out/v1/live/secure/low/$SEQ.ts" # makes it once: the cache is warm
wrk_row "http://$EDGE/out/v1/live/secure/low/$SEQ.ts"; WARM="$RATE|$P50|$P99|$MBS|$WHY"
wrk_row "http://$EDGE/out/v1/d14/hls/stream_0/index.m3u8"; PL14_DEFAULT="$RATE|$P50|$P99|$MBS|$WHY"
wrk_row "http://$EDGE/out/v1/h24h/hls/stream_0/index.m3u8"; PL24_DEFAULT="$RATE|$P50|$P99|$MBS|$WHY"

# Memory: peak RSS of the host while 100 connections ask for 1.3 MB AES-128 segments (caches off).
stop "$HOST_PID"
start_host "$WORK/after" cold 1
rss_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
curl -s -o /dev/null "http://$EDGE/out/v1/live/secure/high/$SEQ.ts"
IDLE_KB=$(awk '/^VmRSS/ { print $2 }' "/proc/$HOST_PID/status")
HIGH_BYTES=$(curl -s "http://$EDGE/out/v1/live/secure/high/$SEQ.ts" | wc -c)
$CLIENT_CORE wrk -t1 -c100 -d"$DURATION" "http://$EDGE/out/v1/live/secure/high/$SEQ.ts" >/dev/null
PEAK_KB=$(rss_kb "$HOST_PID")
PER_REQ=$(awk -v p="$PEAK_KB" -v i="$IDLE_KB" -v s="$HIGH_BYTES" 'BEGIN { printf "%.2f", (p - i) * 1024 / 100 / s }')

# Workers: the same cold AES-128 row with 2 worker VMs on both cores (wrk shares core 1).
stop "$HOST_PID"
if [ "$(nproc)" -ge 2 ]; then
  SERVER_CORE="taskset -c 0,1" start_host "$WORK/after" cold 2
  wrk_row "http://$EDGE/out/v1/live/secure/low/$SEQ.ts"; W2="$RATE|$P50|$P99|$MBS|$WHY"
else
  W2="failed||||one core"
fi

OPENSSL_MBS=$($SERVER_CORE openssl speed -evp aes-128-cbc -bytes 16384 -seconds "${DURATION%s}" 2>/dev/null |
  awk '/^aes-128-cbc|^AES-128-CBC/ { v = $NF; sub(/k$/, "", v); printf "%.0f", v * 1000 / 1e6 }')

# --- report -----------------------------------------------------------------------------------
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" | tee -a "$SUMMARY" >/dev/null; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "" }'; }
fig() { # fig "RATE|P50|P99|MBS|WHY" → "1234 req/s p99 3.1 ms"
  IFS='|' read -r r a p m w <<<"$1"
  if [ "$r" = failed ]; then echo "fails ($w)"; else echo "$r req/s p50 $a ms p99 $p ms"; fi
}
rate() { echo "${1%%|*}"; }
mkdir -p "$(dirname "$SUMMARY")"
while IFS=$'\t' read -r name _; do
  after=${RESULT["after|$name"]}; before=${RESULT["before|$name"]:-}
  row "http: $name" "$(fig "$after")" "$( [ -n "$before" ] && fig "$before")" \
    "$( [ -n "$before" ] && ratio "$(rate "$after")" "$(rate "$before")")"
done <<<"$ROWS"
AES_COLD=${RESULT["after|AES-128 TS segment ~430 KB, host + filter, caches off"]}
STORE=${RESULT["after|the same segment straight from the store sidecar"]}
PL2=${RESULT["after|live playlist (60 s window), 2 min of history"]}
PL24=${RESULT["after|live playlist (60 s window), 24 h of history"]}
PL14=${RESULT["after|live playlist (60 s window), 14 days of history"]}
row "http: AES-128 ~430 KB, shared segment cache warm (defaults)" "$(fig "$WARM")" "$(fig "$AES_COLD")" \
  "$(ratio "$(rate "$WARM")" "$(rate "$AES_COLD")")"
row "http: live playlist 24 h history, defaults (playlist cache on)" "$(fig "$PL24_DEFAULT")" "" ""
row "http: live playlist 14 d history, defaults (playlist cache on)" "$(fig "$PL14_DEFAULT")" "" ""
row "http: playlist rate, 24 h / 2 min of history (caches off)" "$(rate "$PL24") req/s" "$(rate "$PL2") req/s" \
  "$(ratio "$(rate "$PL24")" "$(rate "$PL2")")"
row "http: playlist rate, 14 d / 2 min of history (caches off)" "$(rate "$PL14") req/s" "$(rate "$PL2") req/s" \
  "$(ratio "$(rate "$PL14")" "$(rate "$PL2")")"
row "http: AES-128 ~430 KB cold / the store's clear rate" "$(rate "$AES_COLD") req/s" "$(rate "$STORE") req/s" \
  "$(ratio "$(rate "$AES_COLD")" "$(rate "$STORE")")"
IFS='|' read -r _ _ _ AES_MBS _ <<<"$AES_COLD"
row "http: AES-128 cold MB/s / openssl speed -evp aes-128-cbc (16 KB)" "$AES_MBS MB/s" "$OPENSSL_MBS MB/s" \
  "$(ratio "$AES_MBS" "$OPENSSL_MBS")"
row "http: AES-128 ~430 KB caches off, 2 workers (server on 2 cores, wrk shares one)" "$(fig "$W2")" \
  "$(fig "$AES_COLD")" "$(ratio "$(rate "$W2")" "$(rate "$AES_COLD")")"
row "http: host RSS per in-flight 1.3 MB AES-128 request (100 concurrent), x segment size" \
  "${PER_REQ}x" "$((HIGH_BYTES / 1000)) KB" ""
echo "http bench: done ($(grep -c '^http:' "$SUMMARY") rows in $SUMMARY)" >&2
