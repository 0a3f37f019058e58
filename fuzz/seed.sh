#!/usr/bin/env bash
# Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the recorded fixtures, the shipped
# configurations and fresh ffmpeg output. Committed with its output; rerun it after changing a
# fixture. What the fuzzers found since (other files in fuzz/corpus/) is kept.
set -euo pipefail
cd "$(dirname "$0")"
C=corpus
fx=../filter/tests/fixtures
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seed() { mkdir -p "$C/$1"; cat > "$C/$1/seed-$2"; }
# N pseudo-random bytes from seed S: the same every run, so reseeding changes no file by itself.
bytes() { python3 -c "import random, sys; random.seed($2); sys.stdout.buffer.write(random.randbytes($1))"; }

# Media playlists: the store's views, and each with a window (after a NUL: now, window, delay,
# start, end as the target reads them).
for f in store_media_stream_0 store_media_fmp4; do
  seed store_media_playlist "$f" < "$fx/$f.m3u8"
  { cat "$fx/$f.m3u8"; printf '\0'; bytes 40 "${#f}"; } | seed store_media_playlist "$f-window"
done
# Multivariant playlists, the last byte picking the endpoint (0: the first).
for f in store_multivariant multivariant_groups; do
  { cat "$fx/$f.m3u8"; printf '\0'; } | seed store_multivariant "$f"
  { cat "$fx/$f.m3u8"; printf '\x83'; } | seed store_multivariant "$f-filtered"
done

# What ffmpeg uploads: MPEG-TS and fMP4 media playlists, a multivariant playlist; the segments,
# raw H.264 and ADTS for the demuxer's targets.
ffmpeg -v error -f lavfi -i testsrc2=size=64x36:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 2 -map 0:v -map 1:a -map 0:v -map 1:a -c:v libx264 -preset ultrafast -g 10 -c:a aac -b:a 32k \
  -f hls -hls_time 0.4 -hls_list_size 3 -hls_flags program_date_time+independent_segments \
  -var_stream_map "v:0,a:0 v:1,a:1" -master_pl_name master.m3u8 \
  -hls_segment_filename "$work/ts_%v_%d.ts" "$work/ts_%v.m3u8"
ffmpeg -v error -f lavfi -i testsrc2=size=64x36:rate=25 -t 1 -c:v libx264 -preset ultrafast -g 10 \
  -f hls -hls_time 0.4 -hls_segment_type fmp4 -hls_flags program_date_time \
  -hls_segment_filename "$work/fmp4_%d.m4s" "$work/fmp4.m3u8"
seed ingest_playlist ffmpeg-ts < "$work/ts_0.m3u8"
seed ingest_playlist ffmpeg-fmp4 < "$work/fmp4.m3u8"
seed ingest_playlist ffmpeg-master < "$work/master.m3u8"
seed ingest_playlist store-view < "$fx/store_media_stream_0.m3u8"
seed ts_remux ffmpeg-av < seeds/segment.ts
seed ts_remux ffmpeg-hls < "$work/ts_0_1.ts"
ffmpeg -v error -f lavfi -i testsrc2=size=64x36:rate=25 -t 0.2 -c:v libx264 -preset ultrafast -f mpegts - | seed ts_remux ffmpeg-video
ffmpeg -v error -f lavfi -i sine=frequency=440:sample_rate=48000 -t 0.2 -c:a aac -f mpegts - | seed ts_remux ffmpeg-audio
# fMP4 as ffmpeg pushes it, for fmp4_remux: a two-byte length, the initialization segment, then
# the first media segment.
fmp4_seed() {
  local name=$1
  shift
  ffmpeg -v error -f lavfi -i testsrc2=size=64x36:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 0.4 "$@" -f hls -hls_time 1 -hls_segment_type fmp4 -hls_fmp4_init_filename "$name-init.mp4" \
    -hls_segment_filename "$work/$name-%d.m4s" "$work/$name.m3u8"
  python3 -c 'import struct, sys; i = open(sys.argv[1], "rb").read(); s = open(sys.argv[2], "rb").read(); sys.stdout.buffer.write(struct.pack(">H", len(i)) + i + s)' \
    "$work/$name-init.mp4" "$work/$name-0.m4s" | seed fmp4_remux "$name"
}
fmp4_seed ffmpeg-av -c:v libx264 -preset fast -bf 2 -g 10 -c:a aac -b:a 32k
fmp4_seed ffmpeg-video -an -c:v libx264 -preset ultrafast -g 10
fmp4_seed ffmpeg-audio -vn -c:a aac -b:a 32k
ffmpeg -v error -f lavfi -i testsrc2=size=64x36:rate=25 -t 0.2 -c:v libx264 -preset ultrafast -f h264 - | seed h264_parameter_sets ffmpeg-baseline
ffmpeg -v error -f lavfi -i testsrc2=size=64x36:rate=25 -t 0.2 -c:v libx264 -profile:v high -pix_fmt yuv420p -f h264 - | seed h264_parameter_sets ffmpeg-high
ffmpeg -v error -f lavfi -i sine=frequency=440:sample_rate=48000 -t 0.1 -c:a aac -f adts - | seed adts_frames ffmpeg-stereo
ffmpeg -v error -f lavfi -i sine=frequency=440:sample_rate=22050 -t 0.1 -ac 1 -c:a aac -f adts - | seed adts_frames ffmpeg-mono

# Inputs the fuzzers found that failed once (fuzz/artifacts/…, fixed since): kept as
# regression-* files beside the seeds, replayed by every make fuzz-smoke.

# Viewer requests and key tokens are structure-aware (arbitrary): any bytes decode to one.
for n in 1 2 3 4; do bytes $((n * 300)) "$n" | seed viewer_request "random-$n"; done
for n in 1 2; do bytes $((n * 100)) "$n" | seed key_token "random-$n"; done

n=0
while IFS= read -r q; do n=$((n + 1)); printf '%s' "$q" | seed manifest_query "$n"; done <<'Q'
aws.manifestfilter=video_height:100-300;audio_sample_rate:48000
aws.manifestfilter=video_bitrate:0-500000,800000-;audio_language:en,fr;trickplay_height:1-2
start=2026-11-25T14:35:31Z&end=2026-11-25T14:35:37.5%2B01:00
start=1795617331&end=1795617337&token=1795617400-00112233445566778899aabbccddeeff
aws.manifestsettings=manifest_window_seconds:4;time_delay:2;start:2026-11-25T14:35:31Z
Q

seed plugin_config fixture < "$fx/plugin_config.json"
for f in ../target/envoy-check/*.json; do [ -e "$f" ] && seed plugin_config "$(basename "$f" .json)" < "$f"; done
printf '{"kids":["AAECAwQFBgcICQoLDA0ODw"],"type":"temporary"}' | seed clearkey_license eme
printf '{"kids":["zY2W7CDmJt6rOXtRjgyqeg","AAECAwQFBgcICQoLDA0ODw"],"type":"persistent-license"}' | seed clearkey_license two

n=0
while IFS= read -r p; do n=$((n + 1)); printf '%s' "$p" | seed ingest_path "$n"; done <<'P'
/in/v1/news/1/stream_0.m3u8
/in/v1/news/2/hd/seg%201.ts
/in/v1/news/1/720p/index.m3u8
/in/v1/news/1/a/%2e%2e/x.ts
/in/v1/news/1/stream_0_12.m4s
P
# Arbitrary splits the header, method and URI by length prefixes: whole headers still seed.
printf 'Basic ZW5jMTpwdzE=' | seed ingest_authorization basic
printf 'Digest username="enc1", realm="edgepack ingest", nonce="6745a1b2.00112233445566778899aabbccddeeff", uri="/in/v1/news/1/a.ts", algorithm=MD5, response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="abc"' | seed ingest_authorization digest

seed sidecar_config example < ../store-sidecar/edgepack-store.example.toml
seed sidecar_config compose < ../envoy/edgepack-store.toml

n=0
while IFS= read -r p; do n=$((n + 1)); printf '%s' "$p" | seed store_api_paths "$n"; done <<'S'
/store/v1/news/stream_0/index.m3u8?window=60000&delay=0&rotation=4
/store/v1/news/stream_0/index.m3u8?window=60000&delay=2000&now=1795617331666&start=1795617331000&end=1795617337000&rotation=0
/store/v1/news/index.m3u8
/store/v1/news/stream_0/at/1795617331666.ts
/store/v1/news/stream_0/init-0a1b.mp4
/store/v1/news/status
S

# Ad cues: the SCTE 35 standard's sample cues (binary), the tag forms encoders write, and a store
# view with the store's own cue tags.
b64() { python3 -c "import base64, sys; sys.stdout.buffer.write(base64.b64decode(sys.argv[1]))" "$1"; }
insert=/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=
placement=/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==
b64 "$insert" | seed ad_cues splice-insert
b64 "$placement" | seed ad_cues time-signal
printf '#EXT-OATCLS-SCTE35:%s\n#EXT-X-CUE-OUT:30.000\n' "$insert" | seed ad_cues cue-out
printf '#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=30.000,SCTE35=%s\n' "$insert" | seed ad_cues cue-out-cont
printf '#EXT-X-DATERANGE:ID="b",START-DATE="2026-11-25T14:00:08.000Z",PLANNED-DURATION=10,SCTE35-OUT=0xFC302F\n' | seed ad_cues daterange
printf '#EXT-X-SCTE35:CUE="%s",ID="7",CUE-OUT=YES\n' "$placement" | seed ad_cues ext-x-scte35
{
  printf '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n'
  for i in 0 1 2 3 4 5; do
    printf '#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:%02d.000Z\n' $((i * 2))
    case $i in
      1) printf '#EXT-X-CUE-OUT:4\n#EXT-X-EDGEPACK-CUE:EDGE=OUT,ID="7",DURATION=4.000,SCTE35=0x%s\n' \
           "$(b64 "$insert" | od -An -tx1 | tr -d ' \n')" ;;
      2) printf '#EXT-X-EDGEPACK-CUE:EDGE=CONT,DURATION=4.000\n' ;;
      4) printf '#EXT-X-CUE-IN\n#EXT-X-EDGEPACK-CUE:EDGE=IN\n' ;;
    esac
    printf '#EXTINF:2.000,\n%s.ts\n' $i
  done
} | seed ad_cues store-view

# WebVTT segments (8 bytes of the video's first MPEG-2 time first): ffmpeg's, and one with a map,
# ids, settings, a NOTE and overlapping cues.
printf '1\n00:00:00,100 --> 00:00:00,900\nCue 0\n\n2\n00:00:01,100 --> 00:00:02,500\nCue 1\n\n' > "$work/cues.srt"
ffmpeg -v error -i "$work/cues.srt" -c:s webvtt -f webvtt "$work/cues.vtt"
{ printf '\0\0\0\0\0\0\x1c\x20'; cat "$work/cues.vtt"; } | seed webvtt_wvtt ffmpeg
{
  printf '\0\0\0\1\xff\xff\0\0WEBVTT - news\r\nX-TIMESTAMP-MAP=LOCAL:00:00:01.000,MPEGTS:8589924592\r\n\r\n'
  printf 'NOTE a note\r\n\r\nid1\r\n00:00:01.500 --> 00:00:02.300 line:0 align:start\r\n<b>One</b>\r\ntwo\r\n\r\n'
  printf '00:02.000 --> 00:03.900\r\nOverlap\r\n'
} | seed webvtt_wvtt mapped
