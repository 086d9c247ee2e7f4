#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes sink-service/openapi.json, the OpenAPI document of the HTTPS API.

Edit here, run `python3 sink-service/openapi.py`, commit both. A unit test checks that every
documented operation is served with the scope stated as `x-veil-scope`, and the reverse.
"""
import json
import pathlib

NAME = {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"}
TIME = {"type": "string", "description": "RFC 3339 UTC (2026-11-23T10:00:00Z) or nanoseconds since the epoch"}


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema):
    return {**schema, "nullable": True}


def q(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def p(name, schema, description):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


TENANT = p("tenant", NAME, "The tenant: the key's own (any other answers 404)")
FILTERS = [
    q("site", NAME, "Only this site"),
    q("device", NAME, "Only this device"),
    q("stream", NAME, "Only this stream"),
    q("from", TIME, "Capture time from (inclusive)"),
    q("to", TIME, "Capture time to (exclusive)"),
]
PAGING = [
    q("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size"),
    q("cursor", {"type": "string"}, "next_cursor of the previous page"),
]

ERRORS = {
    "400": "The request is malformed (the reason says what)",
    "401": "No key, or a key that is unknown, wrong, revoked or expired",
    "403": "The key lacks this operation's scope",
    "404": "No such resource (or another tenant's)",
    "429": "Over the key's rate limit (see Retry-After and RateLimit)",
    # A tenant other services own (wholly or in part) is read from every owner over Zenoh
    # (docs/deploy.md, "One front door"); a partial answer is never served.
    "502": "Another owner of part of this tenant refused the caller's key (its reason is given)",
    "503": "The other owners cannot be asked now (Zenoh)",
    "504": "An owner of part of this tenant did not answer (named): no partial answer is served",
}
RATE_HEADERS = {
    "RateLimit": {"description": "\"<tier>\";r=<remaining>;t=<seconds>", "schema": {"type": "string"}},
    "RateLimit-Policy": {"description": "\"<tier>\";q=<quota>;w=<window seconds>", "schema": {"type": "string"}},
}


def json_response(description, schema):
    return {"description": description, "headers": RATE_HEADERS,
            "content": {"application/json": {"schema": schema}}}


def op(summary, scope, ok, params=(), body=None, status="200", errors=tuple(ERRORS)):
    o = {"summary": summary, "x-veil-scope": scope, "security": [{"apiKey": []}, {"sessionCookie": []}],
         "parameters": [TENANT, *params], "responses": {status: ok}}
    for code in errors:
        o["responses"][code] = {"description": ERRORS[code],
                                "content": {"application/json": {"schema": ref("Error")}}}
    if body is not None:
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return o


STATIONS = {"type": "object", "additionalProperties": False,
            "description": "Limits to sites, devices and streams of the tenant; an empty or absent list "
                           "does not limit that axis. A key sees, and creates keys and webhooks for, "
                           "only what its own stations hold.",
            "properties": {axis: {"type": "array", "maxItems": 100, "uniqueItems": True, "items": NAME}
                           for axis in ("sites", "devices", "streams")}}


def page(item):
    return {"type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": item},
                           "next_cursor": nullable({"type": "string"})}}


SCOPES = ["read", "write", "analytics", "export", "webhooks", "images", "admin"]
EVENTS = ["window.closed", "integrity.alert", "inspection.ng", "compliance.violation"]

schemas = {
    "Session": {"type": "object", "required": ["key_id", "tenant", "name", "scopes", "csrf_token", "idle_timeout_s"],
                "description": "The key behind a console session (never its secret), and the session's CSRF token",
                "properties": {"key_id": {"type": "string"}, "id": {"type": "string"}, "tenant": {"type": "string"},
                               "name": {"type": "string"}, "role": nullable({"type": "string"}),
                               "scopes": {"type": "array", "items": {"type": "string"}}, "tier": {"type": "string"},
                               "created": {"type": "string"}, "expires": nullable({"type": "string"}),
                               "revoked": nullable({"type": "string"}), "rotated": nullable({"type": "string"}),
                               "stations": {}, "csrf_token": {"type": "string"},
                               "idle_timeout_s": {"type": "integer"}}},
    "Error": {"type": "object", "required": ["error", "reason"], "properties": {
        "error": {"type": "string", "enum": ["bad_request", "unauthorized", "forbidden", "not_found",
                                              "method_not_allowed", "conflict", "payload_too_large",
                                              "rate_limited", "internal"]},
        "reason": {"type": "string"}}},
    "Record": {"type": "object", "description": "A stored record exactly as the device signed it (see schema/record.schema.json)",
               "required": ["v", "tenant", "site", "device", "stream", "seq", "capture_time", "kind", "body", "hash"],
               "properties": {"v": {"type": "integer"}, "tenant": {"type": "string"}, "site": {"type": "string"},
                              "device": {"type": "string"}, "stream": {"type": "string"},
                              "seq": {"type": "integer", "minimum": 1}, "capture_time": {"type": "string"},
                              "pts": nullable({"type": "integer"}), "kind": {"type": "string"},
                              "body": {}, "prev": nullable({"type": "string"}), "hash": {"type": "string"}}},
    "Stream": {"type": "object", "required": ["site", "device", "stream", "records", "chain_epoch", "chain_seq", "signed_upto"],
               "properties": {"site": {"type": "string"}, "device": {"type": "string"}, "stream": {"type": "string"},
                              "records": {"type": "object", "additionalProperties": {"type": "integer"}},
                              "chain_epoch": {"type": "integer", "minimum": 0,
                                              "description": "0: the device's first chain; one more for each re-key with a new chain (the same stream then has one entry per epoch)"},
                              "chain_seq": {"type": "integer"}, "signed_upto": {"type": "integer"},
                              "last_capture_time": nullable({"type": "string", "description": "Capture time of the newest valid record (checkpoints aside)"})}},
    "IntegrityAlert": {"type": "object", "required": ["id", "source", "time", "type", "detail", "acknowledged"],
                       "properties": {"id": {"type": "string"}, "source": {"type": "string", "enum": ["device", "service"]},
                                      "time": {"type": "string"}, "site": nullable({"type": "string"}),
                                      "device": nullable({"type": "string"}), "stream": nullable({"type": "string"}),
                                      "type": {}, "detail": {}, "acknowledged": nullable(ref("Acknowledgement"))}},
    "Acknowledgement": {"type": "object", "required": ["by", "time"],
                        "properties": {"by": {"type": "string"}, "time": {"type": "string"},
                                       "note": nullable({"type": "string"})}},
    "Bucket": {"type": "object", "required": ["key", "windows"], "properties": {
        "key": {"type": "string"}, "windows": {"type": "integer"},
        "opportunities_to_see": {"type": "integer"}, "watchers": {"type": "integer"},
        "attention_time_s": {"type": "number"}, "dwell_time_s": {"type": "number"},
        "dwell_bands": {"type": "object", "additionalProperties": {"type": "integer"}},
        "visitors": {"type": "integer"}, "occupancy_mean": {"type": "number"}, "occupancy_max": {"type": "integer"},
        "transitions": {"type": "integer"}, "forward": {"type": "integer"}, "backward": {"type": "integer"}}},
    "Rollup": {"type": "object", "required": ["dimension", "windows", "utc_offset_minutes", "buckets"], "properties": {
        "dimension": {"type": "string"}, "windows": {"type": "integer"}, "utc_offset_minutes": {"type": "integer"},
        "buckets": {"type": "array", "items": ref("Bucket")}}},
    "Key": {"type": "object", "required": ["id", "tenant", "name", "scopes", "tier", "created"], "properties": {
        "id": {"type": "string"}, "tenant": {"type": "string"}, "name": {"type": "string"},
        "role": nullable({"type": "string", "enum": ["operator", "engineer", "admin"]}),
        "scopes": {"type": "array", "items": {"type": "string", "enum": SCOPES}},
        "tier": {"type": "string"}, "created": {"type": "string"}, "expires": nullable({"type": "string"}),
        "revoked": nullable({"type": "string"}), "rotated": nullable({"type": "string"}),
        "stations": STATIONS}},
    "KeyWithToken": {"type": "object", "required": ["key", "token"], "properties": {
        "key": ref("Key"), "token": {"type": "string", "description": "veil_<id>_<secret>: shown only now"}}},
    "NewKey": {"type": "object", "additionalProperties": False,
               "description": "A role, or scopes, or a role narrowed by scopes",
               "anyOf": [{"required": ["role"]}, {"required": ["scopes"]}], "properties": {
        "name": {"type": "string", "maxLength": 100},
        "role": {"type": "string", "enum": ["operator", "engineer", "admin"]},
        "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": SCOPES}},
        "tier": {"type": "string", "maxLength": 50, "description": "A tier of the configuration (default standard)"},
        "expires": {"type": "string", "format": "date-time", "maxLength": 40, "description": "RFC 3339"},
        "stations": STATIONS}},
    "Webhook": {"type": "object", "required": ["id", "url", "events", "description", "created"], "properties": {
        "id": {"type": "string"}, "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string", "enum": EVENTS}},
        "description": {"type": "string"}, "created": {"type": "string"}, "stations": STATIONS}},
    "NewWebhook": {"type": "object", "required": ["url", "events"], "additionalProperties": False, "properties": {
        "url": {"type": "string", "format": "uri", "pattern": "^https?://", "maxLength": 2000,
                "description": "https:// (http:// only with webhooks.allow_http; no private addresses unless webhooks.allow_private)"},
        "events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": EVENTS}},
        "description": {"type": "string", "maxLength": 200},
        "stations": STATIONS}},
    "WebhookWithSecret": {"type": "object", "required": ["webhook", "secret"], "properties": {
        "webhook": ref("Webhook"), "secret": {"type": "string", "description": "whsec_<base64>: shown only now"}}},
    "Delivery": {"type": "object", "required": ["webhook_id", "event", "attempt", "time", "outcome"], "properties": {
        "webhook_id": {"type": "string"}, "event": {"type": "string"}, "attempt": {"type": "integer"},
        "time": {"type": "string"}, "status": nullable({"type": "integer"}), "error": nullable({"type": "string"}),
        "outcome": {"type": "string", "enum": ["delivered", "retrying", "failed"]}}},
    "ImageInfo": {"type": "object", "required": ["id", "site", "device", "stream", "seq", "capture_time"],
                  "properties": {"id": {"type": "string"}, "site": {"type": "string"}, "device": {"type": "string"},
                                 "stream": {"type": "string"}, "seq": {"type": "integer"},
                                 "capture_time": {"type": "string"}, "part": {}, "decision": {}, "format": {},
                                 "width": {}, "height": {}, "bytes": {}, "sha256": {}}},
    "AuditEntry": {"type": "object", "required": ["v", "seq", "time", "actor", "action", "outcome", "detail", "prev", "hash"],
                   "properties": {"v": {"type": "integer"}, "seq": {"type": "integer"}, "time": {"type": "string"},
                                  "actor": {"type": "string"}, "tenant": nullable({"type": "string"}),
                                  "source_ip": nullable({"type": "string"}), "action": {"type": "string"},
                                  "outcome": {"type": "string", "enum": ["success", "failure", "denied"]},
                                  "detail": {}, "prev": {"type": "string"}, "hash": {"type": "string"}}},
}

KEY_ID = p("key_id", {"type": "string"}, "The key's id (the part after veil_)")
WEBHOOK_ID = p("webhook_id", {"type": "string"}, "The subscription's id")
E = ("400", "401", "403", "404", "429")
# Reads answered by every owner of a tenant (the front door, docs/deploy.md).
E_FED = (*E, "502", "503", "504")
E_NO400 = ("401", "403", "404", "429")
E_NO400_FED = (*E_NO400, "502", "503", "504")

paths = {
    "/v1/health": {"get": {"summary": "Liveness", "x-veil-scope": None, "security": [], "responses": {
        "200": {"description": "Serving", "content": {"application/json": {"schema": {
            "type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}}}}}}},
    "/v1/openapi.json": {"get": {"summary": "This document", "x-veil-scope": None, "security": [], "responses": {
        "200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/v1/session": {
        "post": {"summary": "Sign in to the console: an API key for a session cookie (__Host-veil_session; HttpOnly, Secure, "
                            "SameSite=Strict) and the CSRF token every change through the session must send as X-CSRF-Token",
                 "x-veil-scope": None, "security": [],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["api_key"], "additionalProperties": False,
                     "properties": {"api_key": {"type": "string", "maxLength": 200}}}}}},
                 "responses": {"201": {"description": "Signed in; Set-Cookie carries the session",
                                       "content": {"application/json": {"schema": ref("Session")}}},
                               **{c: {"description": ERRORS[c], "content": {"application/json": {"schema": ref("Error")}}}
                                  for c in ("400", "401", "429")}}},
        "get": {"summary": "The console session of the cookie, with its CSRF token", "x-veil-scope": None,
                "security": [{"sessionCookie": []}],
                "responses": {"200": {"description": "The session",
                                      "content": {"application/json": {"schema": ref("Session")}}},
                              "401": {"description": ERRORS["401"], "content": {"application/json": {"schema": ref("Error")}}}}},
        "delete": {"summary": "Sign out (needs X-CSRF-Token)", "x-veil-scope": None,
                   "security": [{"sessionCookie": []}],
                   "responses": {"200": {"description": "Signed out; the cookie is cleared", "content": {"application/json": {
                       "schema": {"type": "object", "required": ["signed_out"], "properties": {"signed_out": {"type": "boolean"}}}}}},
                       **{c: {"description": ERRORS[c], "content": {"application/json": {"schema": ref("Error")}}}
                          for c in ("401", "403")}}}},
    "/v1/t/{tenant}/streams": {"get": op("The tenant's streams and their record counts", "read",
        json_response("Streams", {"type": "object", "required": ["items"],
                                  "properties": {"items": {"type": "array", "items": ref("Stream")}}}), errors=E_NO400_FED)},
    "/v1/t/{tenant}/metrics": {"get": op("Metrics windows (valid records of kind metrics), in series and time order", "read",
        json_response("A page of records", page(ref("Record"))), [*FILTERS, *PAGING], errors=E_FED)},
    "/v1/t/{tenant}/events": {"get": op("Events (kind event)", "read",
        json_response("A page of records", page(ref("Record"))), [*FILTERS, *PAGING], errors=E_FED)},
    "/v1/t/{tenant}/inspections": {"get": op("Inspection decisions (kind inspection)", "read",
        json_response("A page of records", page(ref("Record"))), [*FILTERS, *PAGING], errors=E_FED)},
    "/v1/t/{tenant}/compliance": {"get": op("Action compliance records, one per work cycle (kind compliance)", "read",
        json_response("A page of records", page(ref("Record"))), [*FILTERS, *PAGING], errors=E_FED)},
    "/v1/t/{tenant}/integrity": {"get": op("Integrity alerts: the devices' integrity records and what the service found", "read",
        json_response("A page of alerts", page(ref("IntegrityAlert"))), [*FILTERS, *PAGING], errors=E_FED)},
    "/v1/t/{tenant}/integrity/{alert_id}/acknowledge": {"post": op("Acknowledge an integrity alert", "write",
        json_response("Acknowledged", {"type": "object", "required": ["id", "acknowledged"], "properties": {
            "id": {"type": "string"}, "acknowledged": ref("Acknowledgement")}}),
        [p("alert_id", {"type": "string"}, "The alert's id")],
        body={"type": "object", "additionalProperties": False,
              "properties": {"note": {"type": "string", "maxLength": 500}}}, errors=E)},
    "/v1/t/{tenant}/rollups/{dimension}": {"get": op("Metrics windows rolled up per hour, hour of day, day of week, weekday and hour, day, zone, zone-to-zone flow or counting line", "analytics",
        json_response("The buckets", ref("Rollup")),
        [p("dimension", {"type": "string", "enum": ["hour", "hour-of-day", "day-of-week", "weekday-hour", "day", "zone", "flow", "line"]},
           "How to bucket: hour (2026-11-23T10), hour-of-day (10), day-of-week (monday), weekday-hour (monday-10), day (2026-11-23), zone, flow (entrance->shelf), line"),
         *FILTERS, q("utc_offset_minutes", {"type": "integer", "minimum": -720, "maximum": 840, "default": 0},
                     "Local time offset for hour and day buckets")], errors=E_FED)},
    "/v1/t/{tenant}/export": {"get": op("Export records, streamed as JSON Lines or CSV", "export",
        {"description": "The records, one per line", "headers": RATE_HEADERS,
         "content": {"application/jsonl": {"schema": {"type": "string"}},
                     "text/csv; charset=utf-8": {"schema": {"type": "string"}}}},
        [q("kind", {"type": "string", "enum": ["metrics", "event", "integrity", "checkpoint", "config",
                                               "inspection", "compliance"], "default": "metrics"}, "Which records"),
         q("format", {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"}, "Output format"),
         *FILTERS], errors=E_FED)},
    "/v1/t/{tenant}/keys": {
        "get": op("The tenant's API keys (never their secrets)", "admin",
                  json_response("Keys", {"type": "object", "required": ["items"], "properties": {
                      "items": {"type": "array", "items": ref("Key")}}}), errors=E_NO400),
        "post": op("Create an API key (the token is shown once); a key grants only scopes it holds", "admin",
                   json_response("Created", ref("KeyWithToken")), body=ref("NewKey"), status="201", errors=E)},
    "/v1/t/{tenant}/keys/{key_id}": {
        "get": op("One API key", "admin", json_response("The key", ref("Key")), [KEY_ID], errors=E_NO400),
        "delete": {**op("Revoke an API key (at once)", "admin", json_response("The revoked key", ref("Key")),
                        [KEY_ID], errors=E_NO400),
                   "responses": {**op("", "admin", json_response("The revoked key", ref("Key")), [KEY_ID],
                                      errors=E_NO400)["responses"],
                                 "409": {"description": "A key cannot revoke itself",
                                         "content": {"application/json": {"schema": ref("Error")}}}}}},
    "/v1/t/{tenant}/keys/{key_id}/rotate": {"post": {**op("New secret for a key; the old one stops working at once", "admin",
        json_response("The key and its new token", ref("KeyWithToken")), [KEY_ID], errors=E_NO400),
        "responses": {**op("", "admin", json_response("The key and its new token", ref("KeyWithToken")), [KEY_ID],
                           errors=E_NO400)["responses"],
                      "409": {"description": "The key is revoked, or is the caller's own", "content": {"application/json": {"schema": ref("Error")}}}}}},
    "/v1/t/{tenant}/webhooks": {
        "get": op("Webhook subscriptions", "webhooks", json_response("Subscriptions", {
            "type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": ref("Webhook")}}}),
            errors=E_NO400),
        "post": op("Subscribe a URL to event types (the signing secret is shown once)", "webhooks",
                   json_response("Created", ref("WebhookWithSecret")), body=ref("NewWebhook"), status="201", errors=E)},
    "/v1/t/{tenant}/webhooks/{webhook_id}": {
        "get": op("One subscription", "webhooks", json_response("The subscription", ref("Webhook")), [WEBHOOK_ID],
                  errors=E_NO400),
        "delete": op("Unsubscribe", "webhooks", json_response("Deleted", {"type": "object", "required": ["deleted"],
                     "properties": {"deleted": {"type": "string"}}}), [WEBHOOK_ID], errors=E_NO400)},
    "/v1/t/{tenant}/webhooks/{webhook_id}/deliveries": {"get": op("The delivery log, newest first", "webhooks",
        json_response("Attempts", {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": ref("Delivery")}}}),
        [WEBHOOK_ID, PAGING[0]], errors=E)},
    "/v1/t/{tenant}/images": {"get": op("Stored inspection images (failures-only retention), without their pixels", "images",
        json_response("A page of images", page(ref("ImageInfo"))), [*FILTERS, *PAGING], errors=E_FED)},
    "/v1/t/{tenant}/images/{image_id}": {"get": op("One stored image: the JPEG the device encoded", "images",
        {"description": "The JPEG", "headers": {**RATE_HEADERS, "x-veil-sha256": {"description": "SHA-256 of the JPEG, as its inspection record names it", "schema": {"type": "string"}}},
         "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
        [p("image_id", {"type": "string"}, "The image's id from the list")], errors=E_NO400_FED)},
    "/v1/t/{tenant}/audit": {"get": op("The service's audit log entries about this tenant", "admin",
        json_response("A page of entries", page(ref("AuditEntry"))),
        [q("cursor", {"type": "string", "pattern": "^[0-9]{1,19}$"}, "next_cursor of the previous page (a seq)"),
         PAGING[0]], errors=E)},
}

doc = {
    "openapi": "3.0.3",
    "info": {"title": "Veil sink service API", "version": "1",
             "description": "Stored structure (never frames) of Veil devices, per tenant. "
                            "Authenticate with `Authorization: Bearer veil_<id>_<secret>`. "
                            "Every operation states its scope as x-veil-scope."},
    "servers": [{"url": "/"}],
    "paths": paths,
    "components": {"schemas": schemas, "securitySchemes": {
        "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "veil_<id>_<secret>"},
        "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-veil_session",
                          "description": "A console session (POST /v1/session); changes also need X-CSRF-Token"}}},
}
out = pathlib.Path(__file__).with_name("openapi.json")
out.write_text(json.dumps(doc, indent=1) + "\n")
print(f"wrote {out}")
