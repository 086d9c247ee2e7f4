#!/usr/bin/env bash
# Anonymizes a video file with pipelines/anonymize-file.pipeline, showing progress.
# usage: scripts/anonymize.sh INPUT OUTPUT.mp4   (add --preview to watch instead of writing)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
[ $# -ge 1 ] || { echo "usage: scripts/anonymize.sh INPUT OUTPUT.mp4 | INPUT --preview" >&2; exit 2; }
cargo build --locked -q -p gst-plugin-veilinference -p gst-plugin-veilanonymizer
export MODELS=$VEIL_ASSETS/models INPUT=$(realpath "$1")
if [ "${2:-}" = --preview ]; then
  exec gst-launch-1.0 $(envsubst < pipelines/anonymize-preview.pipeline | grep -v '^#')
fi
export OUTPUT=$2
# -e: finish the MP4 properly on Ctrl-C; progressreport prints a line every second.
gst-launch-1.0 -e $(envsubst < pipelines/anonymize-file.pipeline | grep -v '^#') \
  | { grep --line-buffered -E 'progressreport|ERROR|WARNING' || true; }
echo "wrote $OUTPUT"
