#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Benchmark of the HTTPS API with wrk (Debian's package, installed if missing): authenticated
# metrics queries on loopback against a release build of `sink-service serve` whose store holds
# 7 days of one-minute windows per tenant (examples/seed.rs). Prints requests/s and latency
# percentiles per query.
#
#   scripts/bench-api.sh [SECONDS] [CONNECTIONS]     (default 15 s, 32 connections, 2 threads)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
DURATION=${1:-15}
CONNECTIONS=${2:-32}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null; then
  echo "[bench-api] installing wrk" >&2
  as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
fi
source "$VEIL_ROOT/scripts/api-service.sh"
api_service_up release 7 "workers = 2"

run() { # label path
  echo "== $1: GET $2"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency --timeout 10s \
    -H "Authorization: Bearer $READ_KEY" "$API_URL$2" \
    | grep -E "Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx|Socket errors"
}
echo "sink-service $(git rev-parse --short HEAD), $(nproc) cores, wrk -t2 -c$CONNECTIONS -d${DURATION}s, TLS 1.3"
run "one hour of windows (60 records)" "/v1/t/acme/metrics?from=2026-11-24T10:00:00Z&to=2026-11-24T11:00:00Z"
run "a page of 100 windows" "/v1/t/acme/metrics?limit=100"
run "one window (limit=1)" "/v1/t/acme/metrics?limit=1"
# The same requests answer 200 throughout (a check that the figures are not of refusals).
code=$(python3 - "$API_URL" "$READ_KEY" "$CA" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[3])
req = urllib.request.Request(sys.argv[1] + "/v1/t/acme/metrics?limit=1", headers={"Authorization": "Bearer " + sys.argv[2]})
print(urllib.request.urlopen(req, context=ctx).status)
PY
)
echo "status of a request after the runs: $code"
