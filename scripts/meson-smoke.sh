#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# meson setup/compile/install into a temporary prefix; the installed plugin must load.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson setup "$tmp/build" --prefix="$tmp/prefix" >/dev/null
meson compile -C "$tmp/build" >/dev/null
meson install -C "$tmp/build" >/dev/null
plugin_dir=$(dirname "$(find "$tmp/prefix" -name 'libgstveilinference.so' | head -n1)")
for pair in inferfilter:veilinference anonymizer:veilanonymizer aggregator:veilaggregator auditsink:veilaudit fallbacksrc:fallbackswitch; do
  element=${pair%%:*} plugin=${pair##*:}
  GST_PLUGIN_PATH=$plugin_dir GST_REGISTRY=$tmp/registry.bin gst-inspect-1.0 "$element" > "$tmp/inspect.txt"
  grep -q "$plugin_dir/libgst$plugin.so" "$tmp/inspect.txt" || { cat "$tmp/inspect.txt"; exit 1; }
  echo "meson: $element loads from the installed $plugin_dir/libgst$plugin.so"
done
