#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Anonymizes a video file with pipelines/anonymize-file.pipeline, showing progress.
# usage: scripts/anonymize.sh [--profile privacy|balanced|fast|fastest] INPUT OUTPUT.mp4
#        scripts/anonymize.sh [--profile ...] INPUT --preview
# Profiles trade speed for faces found; figures per profile (leak, over-mask, frames/s against
# deface) are measured by scripts/bench-anonymize.sh and listed in docs/elements/anonymizer.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
caller=$PWD
cd "$VEIL_ROOT"
usage() {
  echo "usage: scripts/anonymize.sh [--profile privacy|balanced|fast|fastest] INPUT OUTPUT.mp4 | INPUT --preview" >&2
  exit 2
}
profile=privacy
if [ "${1:-}" = --profile ]; then
  [ $# -ge 2 ] || usage
  profile=$2
  shift 2
fi
[ $# -ge 2 ] || usage
# Every profile: CenterFace at 0.2 (deface's threshold), both cores for inference.
case $profile in
  # Faces from 20 px wide: a coarse whole-frame pass plus full-resolution tiles on every frame.
  privacy) FACES="min-face-size=20 threads=2" ;;
  # The same, the tiles on every second frame (small faces held by their masks in between).
  balanced) FACES="min-face-size=20 tile-interval=2 threads=2" ;;
  # One 640-wide pass per frame: faces from about 32 px (at 720p).
  fast) FACES="threads=2" ;;
  # The fast pass on every second frame; the masks in between are predicted.
  fastest) FACES="threads=2 inference-interval=2" ;;
  *) echo "unknown profile '$profile': privacy, balanced, fast or fastest" >&2; exit 2 ;;
esac
MASKS=""
[ "$profile" = fastest ] && MASKS="stale-frames=2"
export FACES MASKS
# The test command builds the plugins itself and sets VEIL_SKIP_BUILD.
[ -n "${VEIL_SKIP_BUILD:-}" ] || cargo build --locked -q -p gst-plugin-veilinference -p gst-plugin-veilanonymizer
# Paths are the caller's, not the repository's.
abs() { case $1 in /*) echo "$1" ;; *) echo "$caller/$1" ;; esac; }
input=$(abs "$1")
[ -f "$input" ] || { echo "$1: no such file" >&2; exit 2; }
export MODELS=$VEIL_ASSETS/models INPUT=$input
if [ "$2" = --preview ]; then
  exec gst-launch-1.0 $(envsubst < pipelines/anonymize-preview.pipeline | grep -v '^#')
fi
output=$(abs "$2")
[ -d "$(dirname "$output")" ] || { echo "$2: no such directory" >&2; exit 2; }
# Written beside the output and renamed when complete: a failed run leaves no half-written file.
export OUTPUT=$output.part.mp4
trap 'rm -f "$OUTPUT"' EXIT
# -e: EOS on Ctrl-C, so gst-launch stops cleanly (the trap then removes the partial file);
# progressreport prints a line every second.
gst-launch-1.0 -e $(envsubst < pipelines/anonymize-file.pipeline | grep -v '^#') \
  | { grep --line-buffered -E 'progressreport|ERROR|WARNING' || true; }
mv "$OUTPUT" "$output"
trap - EXIT
echo "wrote $output ($profile profile)"
