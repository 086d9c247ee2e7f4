#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Ask a Veil sink service for stored history with a Zenoh `get`, and verify what comes back.

    veil_history.py --connect tcp/127.0.0.1:7447 --key 'veil/acme/**' \\
        [--from 2026-11-23T10:00:00Z] [--to 2026-11-24T10:00:00Z] [--limit N]

Prints one JSON summary: how many records, per chain unit the sequence numbers received, and
whether each record's hash (SHA-256 of its RFC 8785 canonical JSON without "hash") and each
checkpoint's Ed25519 signature verify. Needs eclipse-zenoh, rfc8785, cryptography.
"""

import argparse
import json
import sys

import zenoh

from veil_subscribe import checkpoint_signature_ok, record_hash


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connect", default="tcp/127.0.0.1:7447")
    parser.add_argument("--key", default="veil/**")
    parser.add_argument("--from", dest="start")
    parser.add_argument("--to", dest="end")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    params = []
    if args.start:
        params.append(f"from={args.start}")
    if args.end:
        params.append(f"to={args.end}")
    if args.limit:
        params.append(f"limit={args.limit}")
    selector = args.key + ("?" + ";".join(params) if params else "")

    config = zenoh.Config()
    config.insert_json5("mode", '"client"')
    config.insert_json5("connect/endpoints", json.dumps([args.connect]))
    config.insert_json5("scouting/multicast/enabled", "false")

    records, errors, kinds, units = 0, [], {}, {}
    with zenoh.open(config) as session:
        # Every stored record of a series shares its key expression: without consolidation NONE,
        # Zenoh would keep only the latest reply per key.
        replies = session.get(selector, timeout=args.timeout, consolidation=zenoh.ConsolidationMode.NONE)
        for reply in replies:
            if reply.err is not None:
                errors.append("error reply: " + reply.err.payload.to_string())
                continue
            record = json.loads(reply.ok.payload.to_bytes())
            records += 1
            kinds[record["kind"]] = kinds.get(record["kind"], 0) + 1
            unit = "/".join((record["tenant"], record["device"], record["stream"]))
            units.setdefault(unit, []).append(record["seq"])
            if record_hash(record) != record["hash"]:
                errors.append(f"{unit} record {record['seq']}: hash does not match")
            if record["kind"] == "checkpoint" and not checkpoint_signature_ok(record["body"]):
                errors.append(f"{unit} record {record['seq']}: bad checkpoint signature")
    summary = {
        "records": records,
        "kinds": kinds,
        "units": {u: {"count": len(s), "min": min(s), "max": max(s)} for u, s in units.items()},
        "errors": errors,
    }
    print(json.dumps(summary), flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
