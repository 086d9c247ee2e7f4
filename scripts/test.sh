#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Runs every test: installs what is missing (scripts/setup.sh), then formatting and lint checks,
# the unit, element and end-to-end tests, the API fuzzing (Schemathesis), the console in a real
# browser, and a meson build + install smoke test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"

step() { printf '\n== %s\n' "$*" >&2; }

step "set-up (idempotent)"
scripts/setup.sh

step "synthesized media"
scripts/synth-media.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "unused dependencies (cargo-machete)"
"$VEIL_CACHE/cargo-tools/bin/cargo-machete"

step "the sink service builds without GStreamer or ONNX Runtime (cargo tree)"
if cargo tree --locked -p veil-sink-service -e normal,dev --prefix none | grep -Ei '^(gstreamer|gst|ort)[-_ ]'; then
  echo "veil-sink-service depends on the crates above: it must build without GStreamer or ONNX Runtime" >&2
  exit 1
fi

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "HTTPS API fuzzing against its OpenAPI document (Schemathesis; admin and read-only keys)"
scripts/api-fuzz.sh

step "the console in a real browser (headless Chromium over WebDriver; screenshots in docs/screenshots)"
scripts/console-test.sh

step "meson build + install into a prefix"
scripts/meson-smoke.sh
