#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Property-based testing of the HTTPS API against its own OpenAPI document (Schemathesis, pinned,
# in a venv of its own): a `sink-service serve` with TLS and a seeded store, fuzzed once with an
# admin key and once with a read-only key. Fails on any 5xx, any status code, content type,
# header or body the document does not describe.
#
#   scripts/api-fuzz.sh [MAX_EXAMPLES]      (default 30 per operation and phase)
#
# The service's log and Schemathesis' reports are left in $VEIL_CACHE/api-fuzz/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${1:-30}
SEED=${VEIL_FUZZ_SEED:-$RANDOM}
VENV=$VEIL_CACHE/api-fuzz-venv
OUT=$VEIL_CACHE/api-fuzz
log() { printf '[api-fuzz] %s\n' "$*" >&2; }

if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  log "installing Schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

rm -rf "$OUT"; mkdir -p "$OUT"
source "$VEIL_ROOT/scripts/api-service.sh"
# Schemathesis sends many requests without a valid key on purpose: no 429 for those here.
api_service_up debug 1 "auth_failures_per_minute = 1000000"
cat > "$WORK/schemathesis.toml" <<TOML
[parameters]
"path.tenant" = "acme"
[generation]
allow-x00 = false
TOML
status=0
# Read-only first: the admin run may (rightly) revoke the other keys it lists.
for who in read-only admin; do
  token=$ADMIN_KEY; [ "$who" = read-only ] && token=$READ_KEY
  log "fuzzing with the $who key ($EXAMPLES examples per operation, seed $SEED)"
  # From $WORK: Schemathesis keeps its cache (.schemathesis/) in the working directory.
  (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run \
    "$API_URL/v1/openapi.json" \
    --wait-for-schema 30 --tls-verify "$CA" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --no-color \
    --report junit --report-dir "$OUT/$who") || status=1
done
cp "$WORK/serve.log" "$OUT/serve.log"
kill -0 "$SERVICE_PID" || { log "the service died: see $OUT/serve.log"; exit 1; }
if grep -q "panicked" "$OUT/serve.log"; then log "the service panicked: see $OUT/serve.log"; exit 1; fi
[ $status = 0 ] && log "no 5xx, no response outside the document (admin and read-only keys)"
exit $status
