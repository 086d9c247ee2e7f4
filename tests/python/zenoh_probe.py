#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""An attacker's (or operator's) Zenoh client for the access-control test, written against the
PyPI `eclipse-zenoh` package: opens a session with a JSON5 configuration (a client certificate)
and does one thing, printing what happened as one JSON object.

  zenoh_probe.py CONFIG put KEY COUNT            declared publisher, COUNT puts (congestion: block)
  zenoh_probe.py CONFIG sub KEY SECONDS          samples heard in SECONDS: {"count", "keys"}
  zenoh_probe.py CONFIG get KEY [API_KEY]        replies: {"ok", "payloads", "errors"} (no consolidation)
  zenoh_probe.py CONFIG token KEY SECONDS        a liveliness token on KEY held for SECONDS
  zenoh_probe.py CONFIG answer KEY SECONDS MARKER a queryable on KEY for SECONDS answering each
                                                 query with a made-up record under KEY and an
                                                 answered marker on MARKER: {"queries"}
"""
import json
import sys
import time

import zenoh


def main():
    config, action, key = sys.argv[1], sys.argv[2], sys.argv[3]
    zenoh.init_log_from_env_or("error")
    session = zenoh.open(zenoh.Config.from_file(config))
    try:
        if action == "put":
            count = int(sys.argv[4])
            publisher = session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK)
            time.sleep(0.5)  # let declarations travel
            for i in range(count):
                publisher.put(json.dumps({"probe": i}))
            time.sleep(0.5)
            print(json.dumps({"put": count}))
        elif action == "sub":
            heard = []
            subscriber = session.declare_subscriber(key, lambda s: heard.append(str(s.key_expr)))
            time.sleep(float(sys.argv[4]))
            subscriber.undeclare()
            print(json.dumps({"count": len(heard), "keys": sorted(set(heard))}))
        elif action == "get":
            attachment = sys.argv[4].encode() if len(sys.argv) > 4 else None
            ok, errors = [], []
            for reply in session.get(key, attachment=attachment, timeout=5.0,
                                     consolidation=zenoh.ConsolidationMode.NONE):
                if reply.ok is not None:
                    ok.append(reply.ok.payload.to_string())
                else:
                    errors.append(reply.err.payload.to_string())
            print(json.dumps({"ok": len(ok), "payloads": ok, "errors": errors}))
        elif action == "token":
            token = session.liveliness().declare_token(key)
            time.sleep(float(sys.argv[4]))
            token.undeclare()
            print(json.dumps({"token": key}))
        elif action == "answer":
            seconds, marker = float(sys.argv[4]), sys.argv[5]
            record_key = key.replace("**", "cam-9/default/metrics")
            queries = []

            def on_query(query):
                queries.append(str(query.key_expr))
                record = {"v": 1, "tenant": "acme", "site": "lab", "device": "cam-9",
                          "stream": "default", "kind": "metrics", "seq": 1,
                          "capture_time": "2026-11-23T10:00:00Z", "body": {"made_up": True}}
                query.reply(record_key, json.dumps(record))
                query.reply(marker, "[]")

            queryable = session.declare_queryable(key, on_query)
            time.sleep(seconds)
            queryable.undeclare()
            print(json.dumps({"queries": len(queries)}))
        else:
            sys.exit(f"unknown action {action}")
    finally:
        session.close()


if __name__ == "__main__":
    main()
