#!/usr/bin/env bash
# The main job: face detection (CenterFace via inferfilter) on the synthesized 1280x720 clip and
# on astronaut.png, then persons + faces (NanoDet chained with CenterFace) on messi5.jpg,
# printing the detections of every frame as JSON lines; then the clip anonymized to an MP4, and
# the number of faces left unmasked in it (from the clip's ground truth).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
scripts/setup.sh
scripts/synth-media.sh
cargo build --locked -q -p veil-tools -p gst-plugin-veilinference -p gst-plugin-veilanonymizer
detect=$CARGO_TARGET_DIR/debug/veil-detect
models=$VEIL_ASSETS/models media=$VEIL_ASSETS/media

run() { # title, pipeline file, variables
  local title=$1 file=$2
  shift 2
  printf '\n== %s (pipelines/%s)\n' "$title" "$file"
  "$detect" "$(env "$@" envsubst < "pipelines/$file" | grep -v '^#')"
}

run "faces on the synthesized clip" face-detect.pipeline \
  MODELS="$models" INPUT="$media/faces-720p.mp4"
run "faces on astronaut.png" face-detect.pipeline \
  MODELS="$models" INPUT="$media/astronaut.png"
run "persons and faces on messi5.jpg" persons-and-faces.pipeline \
  MODELS="$models" INPUT="$media/messi5.jpg"

printf '\n== anonymizing the synthesized clip (pipelines/anonymize-file.pipeline)\n'
out=$VEIL_CACHE/demo-anonymized.mp4
scripts/anonymize.sh "$media/faces-720p.mp4" "$out" | tail -n 2
printf 'faces left unmasked (ground truth vs output): '
"$CARGO_TARGET_DIR/debug/veil-leak" "$media/faces-720p.mp4" "$out"
