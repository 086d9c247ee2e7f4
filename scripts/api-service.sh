# SPDX-License-Identifier: MIT OR Apache-2.0
# Sourced by scripts/api-fuzz.sh and scripts/bench-api.sh: a throwaway `sink-service serve` with
# the HTTPS API (development certificates as veil-certs makes them), a store seeded with synthetic device
# chains (examples/seed.rs) for tenants acme and globex, and API keys made with the CLI.
#
#   api_service_up PROFILE DAYS EXTRA_API_TOML   (PROFILE: debug or release; SEED_EXTRA: more
#                                                 options for acme's seed, e.g. --zone NAME)
#
# Sets WORK (removed at exit), BIN, API_PORT, API_URL, CA, ADMIN_KEY, OPERATOR_KEY, READ_KEY and
# SERVICE_PID; the service's output goes to $WORK/serve.log. Needs lib.sh sourced.

api_service_up() {
  local profile=$1 days=$2 extra=${3:-}
  if [ "$profile" = release ]; then
    cargo build -q --locked --release -p veil-sink-service --bin sink-service --example seed
  else
    # Exactly the test command's build (a no-op after it): another selection of packages would
    # unify features differently and rebuild half the dependencies.
    cargo test -q --locked --workspace --no-run 2>/dev/null
  fi
  BIN=$CARGO_TARGET_DIR/$profile/sink-service
  WORK=$(mktemp -d)
  SERVICE_PID=
  trap 'api_service_down' EXIT
  local free_port='import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  API_PORT=$(python3 -c "$free_port")
  local zenoh_port
  zenoh_port=$(python3 -c "$free_port")
  CA=$WORK/certs/ca.pem
  sed "s/127.0.0.1:7447/127.0.0.1:$zenoh_port/" "$VEIL_ROOT/configs/zenoh/service-tcp.json5" > "$WORK/zenoh.json5"
  cat > "$WORK/sink.toml" <<TOML
[store]
path = "$WORK/store"
kek_file = "$WORK/kek"
[zenoh]
config = "$WORK/zenoh.json5"
[api]
listen = "127.0.0.1:$API_PORT"
cert = "$WORK/certs/service.pem"
key = "$WORK/certs/service-key.pem"
$extra
[api.tiers.standard]
requests = 600
window = "60s"
[api.tiers.unlimited]
requests = 1000000000
window = "1s"
TOML
  "$BIN" --config "$WORK/sink.toml" keys init >/dev/null
  "$CARGO_TARGET_DIR/$profile/examples/seed" --config "$WORK/sink.toml" --tenant globex --days "$days" >&2
  # shellcheck disable=SC2086 # SEED_EXTRA: more options for acme's seed (word-split on purpose)
  "$CARGO_TARGET_DIR/$profile/examples/seed" --config "$WORK/sink.toml" --tenant acme --days "$days" \
    --certs "$WORK/certs" ${SEED_EXTRA:-} >&2
  local create=("$BIN" --config "$WORK/sink.toml" api-keys create --tenant acme --tier unlimited)
  ADMIN_KEY=$("${create[@]}" --role admin --name admin 2>/dev/null)
  OPERATOR_KEY=$("${create[@]}" --role operator --name operator 2>/dev/null)
  READ_KEY=$("${create[@]}" --scopes read --name read-only 2>/dev/null)
  "$BIN" --config "$WORK/sink.toml" serve > "$WORK/serve.log" 2>&1 &
  SERVICE_PID=$!
  API_URL=https://127.0.0.1:$API_PORT
  local i
  for i in $(seq 1 100); do
    grep -q "ready" "$WORK/serve.log" && return 0
    kill -0 "$SERVICE_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/serve.log" >&2
  return 1
}

api_service_down() {
  if [ -n "${SERVICE_PID:-}" ]; then
    kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
  fi
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
  return 0
}
