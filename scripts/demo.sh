#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The main job, the whole chain: a sink service is started on loopback; the audience pipeline
# (NanoDet + CenterFace → aggregator → auditsink) runs on vtest.avi and on the synthesized face
# clip, publishing signed, hash-chained records over Zenoh; the service is stopped and prints a
# readable summary of what it stored (windows, dwell bands, attention, integrity status). Then
# the face clip is anonymized, with the count of faces left unmasked. On the way, the HTTPS API
# answers a dashboard's roll-up query with a read-only operator key.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VEIL_ROOT"
scripts/setup.sh
scripts/synth-media.sh
cargo build --locked -q -p veil-tools -p veil-sink-service -p gst-plugin-veilinference \
  -p gst-plugin-veilanonymizer -p gst-plugin-veilaggregator -p gst-plugin-veilaudit
models=$VEIL_ASSETS/models media=$VEIL_ASSETS/media
sink=$CARGO_TARGET_DIR/debug/sink-service

# A fresh store, key and spool for the demo, on a free port of 127.0.0.1.
demo=$VEIL_CACHE/demo
rm -rf "$demo" && mkdir -p "$demo"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s|127.0.0.1:7447|127.0.0.1:$port|" configs/zenoh/service-tcp.json5 > "$demo/service.json5"
sed "s|127.0.0.1:7447|127.0.0.1:$port|" configs/zenoh/device-tcp.json5 > "$demo/device.json5"
sed -e "s|^path = .*|path = \"$demo/store\"|" -e "s|^kek_file = .*|kek_file = \"$demo/sink.kek\"|" \
  -e "s|^config = .*|config = \"$demo/service.json5\"|" configs/sink-service.toml > "$demo/sink-service.toml"
"$sink" --config "$demo/sink-service.toml" keys init
# The HTTPS API too, with a development certificate, and a read-only key for the dashboard query.
"$CARGO_TARGET_DIR/debug/veil-certs" --out "$demo/certs" > /dev/null
api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >> "$demo/sink-service.toml" <<TOML
[api]
listen = "127.0.0.1:$api_port"
cert = "$demo/certs/service.pem"
key = "$demo/certs/service-key.pem"
TOML
api_key=$("$sink" --config "$demo/sink-service.toml" api-keys create --tenant demo --role operator --name demo 2>/dev/null)
# The devices take acknowledgements signed by this key only.
store_key=$("$sink" --config "$demo/sink-service.toml" keys public)
# The camera is enrolled: its key (created here where auditsink keeps it, as provisioning
# would) is the only one the store trusts for demo/cam-1 at site lab.
"$sink" --config "$demo/sink-service.toml" devices enroll --tenant demo --site lab --device cam-1 \
  --spool-dir "$demo/spool" --create

"$sink" --config "$demo/sink-service.toml" serve > "$demo/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q ready "$demo/serve.log" && break; sleep 0.1; done
grep ready "$demo/serve.log"

chain() { # title, stream, input, zones
  printf '\n== %s → auditsink → sink-service (pipelines/audience-audit.pipeline)\n' "$1"
  local description
  description=$(MODELS=$models INPUT=$3 ZONES=$4 START=2026-11-23T10:00:00Z TENANT=demo SITE=lab \
    DEVICE=cam-1 STREAM=$2 ZENOH=$demo/device.json5 SPOOL=$demo/spool STORE_KEY=$store_key \
    envsubst < pipelines/audience-audit.pipeline | grep -v '^#')
  # A failing chain fails the demo (pipefail); only "no line matched" is not an error. The
  # windows themselves are shown by the sink service's summary below.
  # shellcheck disable=SC2086
  gst-launch-1.0 -m $description | { grep -E 'veil-audit-eos' || true; } | sed -E 's/^.*structure = //'
}
chain "audience on vtest.avi" vtest "$media/vtest.avi" configs/zones/vtest.toml
chain "audience on the synthesized face clip" faces "$media/faces-720p.mp4" configs/zones/screen.toml

printf '\n== the HTTPS API, as a dashboard would ask (GET /v1/t/demo/streams, /rollups/zone, /rollups/hour-of-day; operator key)\n'
python3 - "https://127.0.0.1:$api_port" "$api_key" "$demo/certs/ca.pem" <<'PY'
import json, ssl, sys, urllib.request
base, key, ca = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.load(r)
for s in get("/v1/t/demo/streams")["items"]:
    print(f"stream {s['site']}/{s['device']}/{s['stream']}: {s['records']}")
for b in get("/v1/t/demo/rollups/zone")["buckets"]:
    print(f"zone {b['key']}: {b['visitors']} visitors over {b['windows']} windows, occupancy max {b['occupancy_max']}")
for b in get("/v1/t/demo/rollups/hour-of-day")["buckets"]:
    print(f"hour {b['key']} UTC: {b['opportunities_to_see']} opportunities to see, {b['watchers']} watchers")
PY

# The service stops cleanly on SIGTERM: a non-zero exit here is a failure of the demo.
kill -TERM $serve_pid
wait $serve_pid
trap - EXIT
printf '\n== what the sink service stored (sink-service summary)\n'
"$sink" --config "$demo/sink-service.toml" summary

printf '\n== anonymizing the synthesized clip (scripts/anonymize.sh, veil-anonymize)\n'
out=$VEIL_CACHE/demo-anonymized.mp4
scripts/anonymize.sh "$media/faces-720p.mp4" "$out" 2> >(grep -v '^progress' >&2)
printf 'faces left unmasked (ground truth vs output): '
"$CARGO_TARGET_DIR/debug/veil-leak" "$media/faces-720p.mp4" "$out"
