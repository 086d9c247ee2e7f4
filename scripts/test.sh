#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/setup.sh), then formatting and lint checks,
# the unit, element and end-to-end tests, the API fuzzing (Schemathesis), and a meson build +
# install smoke test.
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

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "HTTPS API fuzzing against its OpenAPI document (Schemathesis; admin and read-only keys)"
scripts/api-fuzz.sh

step "meson build + install into a prefix"
scripts/meson-smoke.sh
