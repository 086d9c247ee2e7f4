#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Subscribe to Veil records with the eclipse-zenoh client and verify them without Veil's code.

For every record it recomputes the hash (SHA-256 of the RFC 8785 canonical JSON of the record
without its "hash" member), checks the hash chain per (tenant, device, stream) — sequence numbers
without gaps, "prev" equal to the previous record's hash — and checks each checkpoint's Ed25519
signature (over the canonical JSON of the checkpoint body without "signature").

    veil_subscribe.py --connect tcp/127.0.0.1:7447 [--key 'veil/**'] [--idle 3] [--summary]

Needs: eclipse-zenoh (same 1.x version as the devices), rfc8785, cryptography.
"""

import argparse
import hashlib
import json
import sys
import threading
import time

import rfc8785
import zenoh
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64


def record_hash(record):
    hashed = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(rfc8785.dumps(hashed)).hexdigest()


def checkpoint_signature_ok(checkpoint):
    signed = {k: v for k, v in checkpoint.items() if k != "signature"}
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint["public_key"]))
    try:
        key.verify(bytes.fromhex(checkpoint["signature"]), rfc8785.dumps(signed))
        return True
    except InvalidSignature:
        return False


class Chain:
    """One chain unit, verified in sequence order (records may arrive twice: resends)."""

    def __init__(self):
        self.next_seq = None
        self.head = None
        self.key = None
        self.signed_upto = 0
        self.waiting = {}
        self.verified = 0
        self.kinds = {}
        self.errors = []

    def add(self, record):
        seq = record["seq"]
        if self.next_seq is None:
            # Joined mid-stream: trust the first record's prev, verify from there on.
            self.next_seq, self.head = seq, record["prev"]
        if seq < self.next_seq or seq in self.waiting:
            return
        self.waiting[seq] = record
        while self.next_seq in self.waiting and not self.errors:
            self.check(self.waiting.pop(self.next_seq))

    def check(self, record):
        seq = record["seq"]
        if record_hash(record) != record["hash"]:
            self.errors.append(f"record {seq}: hash does not match its content")
        elif record["prev"] != self.head:
            self.errors.append(f"record {seq}: prev is not the previous record's hash")
        elif record["kind"] == "checkpoint":
            cp = record["body"]
            if cp["seq"] != seq - 1 or cp["head"] != record["prev"]:
                self.errors.append(f"record {seq}: checkpoint does not vouch for the record before it")
            elif not checkpoint_signature_ok(cp):
                self.errors.append(f"record {seq}: bad checkpoint signature")
            elif self.key not in (None, cp["public_key"]):
                self.errors.append(f"record {seq}: checkpoint signed by another key")
            else:
                self.key = cp["public_key"]
                self.signed_upto = cp["seq"]
        if self.errors:
            return
        self.head = record["hash"]
        self.next_seq = seq + 1
        self.verified += 1
        self.kinds[record["kind"]] = self.kinds.get(record["kind"], 0) + 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connect", default="tcp/127.0.0.1:7447", help="Zenoh endpoint of the sink service or router")
    parser.add_argument("--key", default="veil/**", help="key expression to subscribe to")
    parser.add_argument("--idle", type=float, default=0, help="exit after this many seconds without records (0: never)")
    parser.add_argument("--summary", action="store_true", help="print one JSON summary at the end instead of a line per record")
    args = parser.parse_args()

    config = zenoh.Config()
    config.insert_json5("mode", '"client"')
    config.insert_json5("connect/endpoints", json.dumps([args.connect]))
    config.insert_json5("scouting/multicast/enabled", "false")

    chains = {}
    detections = 0
    malformed = 0
    last_arrival = [time.monotonic()]
    lock = threading.Lock()

    def on_sample(sample):
        nonlocal detections, malformed
        with lock:
            last_arrival[0] = time.monotonic()
            try:
                record = json.loads(sample.payload.to_bytes())
                unit = (record["tenant"], record["device"], record["stream"])
            except (ValueError, KeyError, TypeError):
                malformed += 1
                return
            if record.get("kind") == "detections":
                detections += 1 if record_hash(record) == record["hash"] else 0
            else:
                chains.setdefault(unit, Chain()).add(record)
            if not args.summary:
                print(f'{sample.key_expr} seq={record.get("seq")} {record.get("capture_time")}', flush=True)

    with zenoh.open(config) as session:
        subscriber = session.declare_subscriber(args.key, on_sample)
        print("ready", flush=True)
        try:
            while True:
                time.sleep(0.1)
                with lock:
                    idle = time.monotonic() - last_arrival[0]
                    if args.idle and (chains or detections) and idle > args.idle:
                        break
        except KeyboardInterrupt:
            pass
        subscriber.undeclare()

    summary = {
        "chains": {
            "/".join(unit): {
                "verified": c.verified,
                "upto": (c.next_seq or 1) - 1,
                "signed_upto": c.signed_upto,
                "public_key": c.key,
                "kinds": c.kinds,
                "errors": c.errors,
            }
            for unit, c in chains.items()
        },
        "detections": detections,
        "malformed": malformed,
    }
    print(json.dumps(summary), flush=True)
    return 1 if any(c.errors for c in chains.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
