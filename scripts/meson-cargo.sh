#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Called by meson: builds the plugin crates with cargo and copies the shared objects to meson's
# build directory. usage: meson-cargo.sh SOURCE_ROOT BUILD_DIR PROFILE PLUGIN...
set -euo pipefail
src=$1 out=$2 profile=$3
shift 3
target=${CARGO_TARGET_DIR:-$out/cargo-target}
# One cargo call per plugin: cargo refuses a `-p` list that mixes workspace members with a
# dependency's package (gst-plugin-fallbackswitch).
for p in "$@"; do
  (cd "$src" && CARGO_TARGET_DIR=$target cargo build --profile "$profile" --lib -p "gst-plugin-$p")
done
dir=$target/$([ "$profile" = dev ] && echo debug || echo "$profile")
for p in "$@"; do
  cp -f "$dir/libgst$p.so" "$out/libgst$p.so"
done
