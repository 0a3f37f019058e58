#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, and nothing that is already there:
# ffmpeg (encoder and player), curl, openssl, wrk and taskset (the HTTP bench, run once in quick
# mode), Node.js + npm, Chromium (the browser tests drive Debian's; no browser download),
# GStreamer (the Smooth Streaming player), the wasm targets, rustfmt/clippy, and wasm-bindgen's test
# runner of the version in Cargo.lock. Run by `make test` (target `tools`) and so by `.ci/run`.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v taskset >/dev/null || need_apt+=(util-linux)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v chromium >/dev/null || need_apt+=(chromium)
# GStreamer: mssdemux (plugins-bad) is the Smooth Streaming player; avdec_* decode.
command -v gst-launch-1.0 >/dev/null || need_apt+=(gstreamer1.0-tools)
gst-inspect-1.0 mssdemux >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-bad)
gst-inspect-1.0 qtdemux >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-good)
gst-inspect-1.0 souphttpsrc >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-good)
gst-inspect-1.0 typefind >/dev/null 2>&1 || need_apt+=(gstreamer1.0-plugins-base)
gst-inspect-1.0 avdec_h264 >/dev/null 2>&1 || need_apt+=(gstreamer1.0-libav)
if [ "${#need_apt[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

installed_targets=$(rustup target list --installed)
for t in wasm32-wasip1 wasm32-unknown-unknown; do
  grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done
installed_components=$(rustup component list --installed)
for c in rustfmt clippy; do
  grep -q "^$c" <<<"$installed_components" || rustup component add "$c"
done

# The filter core's tests also run under wasm (node + wasm-bindgen-test-runner). The runner must
# match the wasm-bindgen version in Cargo.lock; building it takes ~12 minutes on 2 cores, so only
# when the right version is missing.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi
