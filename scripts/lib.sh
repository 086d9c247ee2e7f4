# SPDX-License-Identifier: MIT OR Apache-2.0
# Shared by the scripts: where the cache lives and how the tools find what setup installed.
# Source it; it only sets variables.
VEIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VEIL_CACHE=${VEIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veil}
export VEIL_ROOT VEIL_CACHE
export VEIL_ASSETS=${VEIL_ASSETS:-$VEIL_CACHE/assets}
# The cargo target directory lives outside the clone so a fresh clone reuses earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$VEIL_CACHE/target}
ORT_VERSION=1.32.0
# The zenoh crate's version (Cargo.toml pins it) and the router of the same version.
ZENOH_VERSION=1.10.2
export VEIL_ZENOHD=${VEIL_ZENOHD:-$VEIL_CACHE/cargo-tools/bin/zenohd}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$VEIL_CACHE/onnxruntime-$ORT_VERSION/libonnxruntime.so.$ORT_VERSION}
# Our plugins, as built by cargo (the dev profile used by the tests; meson reuses this output);
# VEIL_PLUGIN_DIR picks another build (the benchmarks use the release one).
export VEIL_PLUGIN_DIR=${VEIL_PLUGIN_DIR:-$CARGO_TARGET_DIR/debug}
export GST_PLUGIN_PATH=$VEIL_PLUGIN_DIR${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
