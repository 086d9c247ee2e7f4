#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Scrapes a /metrics URL and parses it with the Prometheus project's Python client (PyPI
`prometheus-client`, its OpenMetrics parser when the answer says OpenMetrics, else its text
parser), printing every sample as JSON: [{"name", "labels", "value"}].

    prometheus_scrape.py URL
"""
import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as text


def main():
    with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:
        content_type = answer.headers.get("content-type", "")
        body = answer.read().decode("utf-8")
    parse = openmetrics if content_type.startswith("application/openmetrics-text") else text
    samples = [
        {"name": s.name, "labels": dict(s.labels), "value": s.value}
        for family in parse(body)
        for s in family.samples
    ]
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
