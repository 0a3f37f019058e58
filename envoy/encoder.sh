#!/bin/sh
# edgepack demo encoder: ffmpeg pushes a live test stream (two renditions + a multivariant playlist)
# to one input of a channel, with HTTP Digest credentials, as an encoder in the field would.
# Used by the docker compose demo (one container per input), by `make run-local`, and by the tests.
#
# Environment:
#   EDGEPACK_INGEST     ingest base URL, e.g. http://store:8080   (required)
#   EDGEPACK_CHANNEL    channel id (default news)
#   EDGEPACK_INPUT      1 or 2 (default 1)
#   EDGEPACK_USERNAME, EDGEPACK_PASSWORD   the input's credentials (required)
#   EDGEPACK_SECONDS    stop after this many seconds (default: run until stopped)
#   EDGEPACK_SIZE       picture size of the top rendition (default 640x360)
#
# Both inputs must be aligned for failover (same segment boundaries, same media sequence numbers),
# as for MediaPackage. Two independent encoders get that here from the wall clock: each starts on an
# even second and numbers its first segment (2 s each) epoch/2, so segment N covers the same two
# seconds on both inputs, and an encoder that restarts rejoins the same numbering.
set -eu

: "${EDGEPACK_INGEST:?set EDGEPACK_INGEST, e.g. http://127.0.0.1:8080}"
: "${EDGEPACK_USERNAME:?set EDGEPACK_USERNAME}"
: "${EDGEPACK_PASSWORD:?set EDGEPACK_PASSWORD}"
channel="${EDGEPACK_CHANNEL:-news}"
input="${EDGEPACK_INPUT:-1}"
size="${EDGEPACK_SIZE:-640x360}"
case "$input" in 1|2) ;; *) echo "EDGEPACK_INPUT must be 1 or 2, not '$input'" >&2; exit 2 ;; esac

host="${EDGEPACK_INGEST#http://}"
base="http://${EDGEPACK_USERNAME}:${EDGEPACK_PASSWORD}@${host%/}/in/v1/${channel}/${input}"

# Which input is on screen, so a failover is visible in the player (needs a font; optional).
label=""
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ -f "$font" ]; then
  label=",drawtext=fontfile=${font}:fontsize=h/12:fontcolor=white:box=1:boxcolor=black@0.5:x=20:y=h-th-20:text='input ${input}  %{localtime\:%X}'"
fi

duration=""
if [ -n "${EDGEPACK_SECONDS:-}" ]; then duration="-t ${EDGEPACK_SECONDS}"; fi

# Start on an even second; the first segment is numbered epoch/2.
while [ $(( $(date +%s) % 2 )) -ne 0 ]; do sleep 0.05; done
start=$(( $(date +%s) / 2 ))

echo "encoder: input ${input} of channel ${channel} -> ${EDGEPACK_INGEST}, first segment ${start}" >&2
# shellcheck disable=SC2086 # $duration is empty or two words
exec ffmpeg -hide_banner -loglevel "${EDGEPACK_LOGLEVEL:-warning}" -nostdin \
  -re -f lavfi -i "testsrc2=size=${size}:rate=25" \
  -re -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -filter_complex "[0:v]split=2[a][b];[a]null${label}[top];[b]scale=-2:180${label}[low]" \
  -map "[top]" -map 1:a -map "[low]" -map 1:a \
  -c:v libx264 -preset veryfast -tune zerolatency -threads 1 -pix_fmt yuv420p \
  -g 50 -keyint_min 50 -sc_threshold 0 \
  -b:v:0 800k -maxrate:v:0 880k -bufsize:v:0 1600k \
  -b:v:1 250k -maxrate:v:1 275k -bufsize:v:1 500k \
  -c:a aac -b:a 96k -ac 2 \
  $duration \
  -f hls -hls_time 2 -hls_list_size 6 -start_number "$start" \
  -hls_flags program_date_time+delete_segments -method PUT \
  -var_stream_map "v:0,a:0 v:1,a:1" -master_pl_name master.m3u8 \
  -hls_segment_filename "${base}/stream_%v_%d.ts" "${base}/stream_%v.m3u8"
