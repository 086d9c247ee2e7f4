#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The console in a real browser (Debian's headless Chromium over WebDriver, driven by selenium
# from tests/python/console_browser.py): a `sink-service serve` with TLS and a store seeded with
# a week of one-minute windows (examples/seed.rs; one zone named with HTML in it), an operator
# and an admin key. Screenshots of every page go to docs/screenshots/; the timings measured in
# the browser are printed as JSON.
#
#   scripts/console-test.sh [SCREENSHOT_DIR]     (default docs/screenshots)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"

SHOTS=${1:-$VEIL_ROOT/docs/screenshots}
log() { printf '[console] %s\n' "$*" >&2; }

source "$VEIL_ROOT/scripts/api-service.sh"
SEED_EXTRA='--zone <img/src=x/onerror=window.__veil_xss=1>' api_service_up debug 7 ""
log "serve on $API_URL (log: $WORK/serve.log)"
export SE_AVOID_STATS=true
if ! "$VEIL_CACHE/client-venv/bin/python" tests/python/console_browser.py --url "$API_URL" \
  --ca "$CA" --cert "$WORK/certs/service.pem" --operator "$OPERATOR_KEY" --admin "$ADMIN_KEY" \
  --tenant acme --screenshots "$SHOTS"; then
  tail -50 "$WORK/serve.log" >&2
  exit 1
fi
