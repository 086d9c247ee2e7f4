#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Makes the synthesized face clip (and its ground truth) once, with the veil-synth tool.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
clip=$VEIL_ASSETS/media/faces-720p.mp4
# The synthesis is part of the source: re-make the clip when the tool changed.
stamp=$(cat tools/src/synth.rs tools/src/bin/veil-synth.rs | sha256sum | cut -c1-16)
if [ -f "$clip" ] && [ "$(cat "$clip.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
cargo build --locked -q -p veil-tools --bin veil-synth
"$CARGO_TARGET_DIR/debug/veil-synth" "$clip"
echo "$stamp" > "$clip.stamp"
