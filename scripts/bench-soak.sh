#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Soak benchmark (not a test): the audience chain (NanoDet + CenterFace + aggregator) and the
# anonymizer chain (CenterFace + anonymizer) each over FRAMES frames (default one million) of
# vtest.avi looped without a seam — new people to the tracker every pass — as fast as the machine
# goes, resident memory sampled 100 times (tools/src/bin/veil-soak.rs). Prints the RSS at 10% and
# at 100% of the frames and the growth; the samples go to $VEIL_CACHE/bench/soak-<chain>.jsonl.
# Goal: under 5% growth after warm-up. At ~25 frames/s on 2 cores a million frames take ~11 h
# per chain; pass a smaller FRAMES for a shorter run.
# usage: scripts/bench-soak.sh [FRAMES] [audience|anonymizer|both]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
scripts/setup.sh
frames=${1:-1000000}
which=${2:-both}
cargo build --locked -q --release -p veil-tools --bin veil-soak
cargo build --locked -q --release --lib -p gst-plugin-veilinference -p gst-plugin-veilanonymizer \
  -p gst-plugin-veilaggregator
export GST_PLUGIN_PATH=$CARGO_TARGET_DIR/release
out=$VEIL_CACHE/bench
mkdir -p "$out"
models=$VEIL_ASSETS/models
declare -A chains=(
  [audience]="inferfilter decoder=nanodet model=$models/nanodet-m.onnx keep-labels=person threshold=0.3 ! inferfilter model=$models/centerface.onnx ! aggregator window=60 zones-file=configs/zones/vtest.toml start-time=2026-11-23T10:00:00Z"
  [anonymizer]="inferfilter model=$models/centerface.onnx ! anonymizer hold-time=300"
)
for chain in audience anonymizer; do
  [ "$which" = both ] || [ "$which" = "$chain" ] || continue
  echo "== $chain chain, $frames frames of vtest.avi, looped"
  "$CARGO_TARGET_DIR/release/veil-soak" --input "$VEIL_ASSETS/media/vtest.avi" --frames "$frames" \
    --chain "${chains[$chain]}" > "$out/soak-$chain.jsonl"
  tail -n 1 "$out/soak-$chain.jsonl"
done
