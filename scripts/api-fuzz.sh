#!/usr/bin/env bash
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

cargo build -q --locked -p veil-sink-service --bin sink-service --example seed
cargo build -q --locked -p veil-tools --bin veil-certs
BIN=$CARGO_TARGET_DIR/debug/sink-service

rm -rf "$OUT"; mkdir -p "$OUT"
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port); ZENOH_PORT=$(free_port)
"$CARGO_TARGET_DIR/debug/veil-certs" --out "$work/certs" >/dev/null
sed "s/127.0.0.1:7447/127.0.0.1:$ZENOH_PORT/" configs/zenoh/service-tcp.json5 > "$work/zenoh.json5"
cat > "$work/sink.toml" <<TOML
[store]
path = "$work/store"
kek_file = "$work/kek"
[zenoh]
config = "$work/zenoh.json5"
[api]
listen = "127.0.0.1:$API_PORT"
cert = "$work/certs/service.pem"
key = "$work/certs/service-key.pem"
# Schemathesis sends many requests without a valid key on purpose: no 429 for those here.
auth_failures_per_minute = 1000000
[api.tiers.standard]
requests = 1000000
window = "60s"
TOML
"$BIN" --config "$work/sink.toml" keys init >/dev/null
for tenant in acme globex; do
  "$CARGO_TARGET_DIR/debug/examples/seed" --config "$work/sink.toml" --tenant "$tenant" --days 1 >&2
done
ADMIN=$("$BIN" --config "$work/sink.toml" api-keys create --tenant acme --role admin --name fuzz-admin 2>/dev/null)
READ=$("$BIN" --config "$work/sink.toml" api-keys create --tenant acme --scopes read --name fuzz-read 2>/dev/null)

"$BIN" --config "$work/sink.toml" serve > "$OUT/serve.log" 2>&1 &
pid=$!
cat > "$work/schemathesis.toml" <<TOML
[parameters]
"path.tenant" = "acme"
[generation]
allow-x00 = false
TOML
status=0
# Read-only first: the admin run may (rightly) revoke the other keys it lists.
for who in read-only admin; do
  token=$ADMIN; [ "$who" = read-only ] && token=$READ
  log "fuzzing with the $who key ($EXAMPLES examples per operation, seed $SEED)"
  "$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" run \
    "https://127.0.0.1:$API_PORT/v1/openapi.json" \
    --wait-for-schema 30 --tls-verify "$work/certs/ca.pem" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --no-color \
    --report junit --report-dir "$OUT/$who" || status=1
done
kill -0 "$pid" || { log "the service died: see $OUT/serve.log"; exit 1; }
if grep -q "panicked" "$OUT/serve.log"; then log "the service panicked: see $OUT/serve.log"; exit 1; fi
[ $status = 0 ] && log "no 5xx, no response outside the document (admin and read-only keys)"
exit $status
