#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Ask a Veil sink service for stored history with a Zenoh `get`, and verify what comes back.

    VEIL_API_KEY=veil_… veil_history.py --connect tcp/127.0.0.1:7447 --key 'veil/acme/**' \\
        [--from 2026-11-23T10:00:00Z] [--to 2026-11-24T10:00:00Z] [--limit N]
    VEIL_API_KEY=veil_… veil_history.py --admin verify|stats

The query carries the API key (`sink-service api-keys create`, the same keys as the HTTPS API)
as its attachment: history needs the `read` scope and answers only the key's tenant; the admin
queries need the `admin` scope. Without a valid key the service answers with an error reply only.

Prints one JSON summary: how many records, per chain unit the sequence numbers received, and
whether each record's hash (SHA-256 of its RFC 8785 canonical JSON without "hash") and each
checkpoint's Ed25519 signature verify. Needs eclipse-zenoh, rfc8785, cryptography.
"""

import argparse
import json
import os
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
    parser.add_argument("--api-key", default=os.environ.get("VEIL_API_KEY"),
                        help="the API key (default: $VEIL_API_KEY); without one the query is anonymous")
    parser.add_argument("--admin", choices=["verify", "stats"],
                        help="ask veil-admin/sink/<this> instead of the history; prints the answer")
    args = parser.parse_args()
    attachment = args.api_key.encode() if args.api_key else None

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
        if args.admin:
            answers = []
            for reply in session.get(f"veil-admin/sink/{args.admin}", timeout=args.timeout, attachment=attachment):
                if reply.err is not None:
                    answers.append({"error": reply.err.payload.to_string()})
                else:
                    answers.append({"ok": json.loads(reply.ok.payload.to_bytes())})
            print(json.dumps({"answers": answers}), flush=True)
            return 0 if answers and all("ok" in a for a in answers) else 1
        # Every stored record of a series shares its key expression: without consolidation NONE,
        # Zenoh would keep only the latest reply per key.
        replies = session.get(selector, timeout=args.timeout, consolidation=zenoh.ConsolidationMode.NONE,
                              attachment=attachment)
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
