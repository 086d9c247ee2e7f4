#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Called by meson: builds the plugin crates with cargo and copies the shared objects to meson's
# build directory. usage: meson-cargo.sh SOURCE_ROOT BUILD_DIR PROFILE PLUGIN...
set -euo pipefail
src=$1 out=$2 profile=$3
shift 3
target=${CARGO_TARGET_DIR:-$out/cargo-target}
packages=()
for p in "$@"; do packages+=(-p "gst-plugin-$p"); done
(cd "$src" && CARGO_TARGET_DIR=$target cargo build --profile "$profile" --lib "${packages[@]}")
dir=$target/$([ "$profile" = dev ] && echo debug || echo "$profile")
for p in "$@"; do
  cp -f "$dir/libgst$p.so" "$out/libgst$p.so"
done
