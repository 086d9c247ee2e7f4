// SPDX-License-Identifier: MIT OR Apache-2.0
//! The operations behind the routes: parse the request, call the store, shape the answer.
//! They run on a blocking thread (sled is synchronous); exports stream from a thread of their own.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde_json::{Value, json};
use veil_wire::Kind;
use veil_wire::event::DwellBand;

use super::data::{self, Filter};
use super::forwarded::Read;
use super::keys::{ApiKey, NewKey, Role, Scope};
use super::rollup::{self, Dimension};
use super::{Api, Body, Op, Reply, Req};
use crate::audit::Action;
use crate::stations::Stations;
use crate::store::now_ns;

type Params = HashMap<&'static str, String>;

/// A 400 with its reason, or a 500 whose detail stays in the service log.
enum Fail {
    Bad(String),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Fail {
        Fail::Internal(e)
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Fail {
        Fail::Internal(e.into())
    }
}

impl From<sled::Error> for Fail {
    fn from(e: sled::Error) -> Fail {
        Fail::Internal(e.into())
    }
}

fn bad<T>(reason: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Bad(reason.into()))
}

pub fn handle(api: &Api, op: Op, req: &Req, params: &Params, key: Option<&ApiKey>) -> Reply {
    let tenant = params.get("tenant").map(String::as_str).unwrap_or("");
    let result = match (op, key) {
        (Op::Health, _) => Ok(Reply::json(200, json!({"status": "ok"}))),
        (Op::OpenApi, _) => Ok(Reply {
            status: 200,
            headers: Vec::new(),
            body: Body::Raw(
                "application/json",
                Bytes::from_static(super::OPENAPI.as_bytes()),
            ),
        }),
        (_, None) => Ok(Reply::error(401, "an API key is needed")),
        (op, Some(key)) => dispatch(api, op, req, params, tenant, key),
    };
    match result {
        Ok(reply) => reply,
        Err(Fail::Bad(reason)) => Reply::error(400, reason),
        Err(Fail::Internal(e)) => {
            tracing::error!(method = %req.method, path = %req.path, "internal error: {e:#}");
            Reply::error(500, "internal error (logged by the service)")
        }
    }
}

fn dispatch(
    api: &Api,
    op: Op,
    req: &Req,
    params: &Params,
    tenant: &str,
    key: &ApiKey,
) -> Result<Reply, Fail> {
    let store = &api.store;
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    Ok(match op {
        // Answered by the gate itself (public, or sessions: `Api::session_op`).
        Op::Health | Op::OpenApi | Op::SessionBegin | Op::SessionShow | Op::SessionEnd => {
            Reply::error(404, "no such resource")
        }
        Op::Streams => match elsewhere(api, tenant) {
            None => Reply::json(
                200,
                json!({"items": data::streams(store, tenant, &key.stations)?}),
            ),
            Some(federation) => {
                let f = Filter::within(&key.stations);
                match forward(federation, req, tenant, Read::Streams, &f, None)? {
                    Ok(items) => Reply::json(200, json!({ "items": items })),
                    Err(reply) => reply,
                }
            }
        },
        Op::Metrics => records(api, req, tenant, key, Kind::Metrics)?,
        Op::Events => records(api, req, tenant, key, Kind::Event)?,
        Op::Inspections => records(api, req, tenant, key, Kind::Inspection)?,
        Op::Compliance => records(api, req, tenant, key, Kind::Compliance)?,
        Op::Integrity => integrity(api, req, tenant, key)?,
        Op::AcknowledgeIntegrity => acknowledge(api, req, tenant, key, param("alert_id"))?,
        Op::Rollup => rollups(api, req, tenant, key, param("dimension"))?,
        Op::Export => export(api, req, tenant, key)?,
        Op::ListKeys => {
            let items: Vec<Value> = api
                .keys
                .list(tenant)
                .iter()
                .filter(|k| key.stations.covers(&k.stations))
                .map(ApiKey::public)
                .collect();
            Reply::json(200, json!({"items": items}))
        }
        Op::CreateKey => create_key(api, req, tenant, key)?,
        // A station-scoped key manages only keys as narrow as itself; others are absent to it.
        Op::GetKey | Op::RotateKey | Op::RevokeKey
            if api
                .keys
                .get(tenant, param("key_id"))
                .is_some_and(|k| !key.stations.covers(&k.stations)) =>
        {
            Reply::not_found()
        }
        Op::GetKey => match api.keys.get(tenant, param("key_id")) {
            Some(k) => Reply::json(200, k.public()),
            None => Reply::not_found(),
        },
        Op::RotateKey | Op::RevokeKey if param("key_id") == key.id => Reply::error(
            409,
            "a key cannot rotate or revoke itself: use another admin key or the command line",
        ),
        Op::RotateKey => {
            let outcome = api.keys.rotate(store, tenant, param("key_id"), now_ns());
            let reply = match &outcome {
                Ok(Some((k, token))) => {
                    Reply::json(200, json!({"key": k.public(), "token": token}))
                }
                Ok(None) => Reply::not_found(),
                Err(e) => Reply::error(409, e.to_string()),
            };
            key_audit(api, req, key, "key.rotate", param("key_id"), reply.status);
            reply
        }
        Op::RevokeKey => {
            let reply = match api.keys.revoke(store, tenant, param("key_id"), now_ns())? {
                Some(k) => Reply::json(200, k.public()),
                None => Reply::not_found(),
            };
            key_audit(api, req, key, "key.revoke", param("key_id"), reply.status);
            reply
        }
        Op::ListWebhooks => {
            let items: Vec<Value> = crate::webhooks::list(store, tenant)?
                .iter()
                .filter(|s| key.stations.covers(&s.stations))
                .map(crate::webhooks::Subscription::public)
                .collect();
            Reply::json(200, json!({"items": items}))
        }
        Op::CreateWebhook => create_webhook(api, req, tenant, key)?,
        // A station-scoped key sees only the subscriptions as narrow as itself.
        Op::GetWebhook | Op::DeleteWebhook | Op::Deliveries
            if crate::webhooks::get(store, tenant, param("webhook_id"))?
                .is_some_and(|s| !key.stations.covers(&s.stations)) =>
        {
            Reply::not_found()
        }
        Op::GetWebhook => match crate::webhooks::get(store, tenant, param("webhook_id"))? {
            Some(s) => Reply::json(200, s.public()),
            None => Reply::not_found(),
        },
        Op::DeleteWebhook => {
            let id = param("webhook_id");
            if crate::webhooks::delete(store, tenant, id)? {
                note(
                    api,
                    req,
                    key,
                    "webhook.delete",
                    "success",
                    json!({"webhook": id}),
                );
                Reply::json(200, json!({"deleted": id}))
            } else {
                Reply::not_found()
            }
        }
        Op::Deliveries => {
            let id = param("webhook_id");
            if crate::webhooks::get(store, tenant, id)?.is_none() {
                Reply::not_found()
            } else {
                let limit = limit(api, req)?;
                Reply::json(
                    200,
                    json!({"items": crate::webhooks::deliveries(store, tenant, id, limit)?}),
                )
            }
        }
        Op::ListImages => images(api, req, tenant, key)?,
        Op::GetImage => match image(api, req, tenant, key, param("image_id"))? {
            Err(reply) => reply,
            Ok(Some(record)) => {
                use base64::Engine;
                let data = record
                    .body
                    .get("data")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match base64::engine::general_purpose::STANDARD.decode(data) {
                    Ok(jpeg) => Reply {
                        status: 200,
                        headers: vec![(
                            "x-veil-sha256",
                            record.body["sha256"].as_str().unwrap_or("").to_owned(),
                        )],
                        body: Body::Raw("image/jpeg", Bytes::from(jpeg)),
                    },
                    Err(_) => {
                        return Err(Fail::Internal(anyhow::anyhow!(
                            "a stored image is not base64"
                        )));
                    }
                }
            }
            Ok(None) => Reply::not_found(),
        },
        Op::Audit if !key.stations.is_whole_tenant() => Reply::error(
            403,
            "the audit log covers the whole tenant: a station-scoped key cannot read it",
        ),
        Op::Audit => {
            let after = match req.param("cursor") {
                None => 0,
                Some(c) => match c.parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => return bad(format!("cursor {c:?} is not one this API gave")),
                },
            };
            let limit = limit(api, req)?;
            let items = crate::audit::entries(store, after, limit, Some(tenant))?;
            let next = (items.len() == limit)
                .then(|| items.last().map(|e| e.seq.to_string()))
                .flatten();
            Reply::json(200, json!({"items": items, "next_cursor": next}))
        }
    })
}

fn note(api: &Api, req: &Req, key: &ApiKey, action: &str, outcome: &str, detail: Value) {
    api.note(Action {
        actor: &format!("key:{}", key.id),
        tenant: Some(&key.tenant),
        source_ip: Some(&req.peer.to_string()),
        action,
        outcome,
        detail,
    });
}

fn key_audit(api: &Api, req: &Req, key: &ApiKey, action: &str, target: &str, status: u16) {
    let outcome = if status < 300 { "success" } else { "failure" };
    note(
        api,
        req,
        key,
        action,
        outcome,
        json!({"key": target, "status": status}),
    );
    let _ = api.store.flush();
}

fn limit(api: &Api, req: &Req) -> Result<usize, Fail> {
    match req.param("limit") {
        None => Ok(100.min(api.config.max_page)),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=api.config.max_page).contains(&n) => Ok(n),
            _ => bad(format!(
                "limit={v:?}: a number from 1 to {}",
                api.config.max_page
            )),
        },
    }
}

fn time_param(req: &Req, name: &str, default: u64) -> Result<u64, Fail> {
    match req.param(name) {
        None => Ok(default),
        Some(v) => match crate::query::parse_time(v) {
            Some(t) => Ok(t),
            None => bad(format!(
                "{name}={v:?} is not a time (RFC 3339 UTC, e.g. 2026-11-23T10:00:00Z, or ns since the epoch)"
            )),
        },
    }
}

/// The request's filters, inside the key's station scope.
fn filter(req: &Req, key: &ApiKey) -> Result<Filter, Fail> {
    let name = |n: &'static str| -> Result<Option<String>, Fail> {
        match req.param(n) {
            None => Ok(None),
            Some(v) => match veil_wire::names::check_name(n, v) {
                Ok(()) => Ok(Some(v.to_owned())),
                Err(e) => bad(e.to_string()),
            },
        }
    };
    let f = Filter {
        site: name("site")?,
        device: name("device")?,
        stream: name("stream")?,
        from: time_param(req, "from", 0)?,
        to: time_param(req, "to", u64::MAX)?,
        stations: key.stations.clone(),
    };
    if f.from > f.to {
        return bad("from is after to");
    }
    Ok(f)
}

fn cursor(req: &Req) -> Result<Option<Vec<u8>>, Fail> {
    match req.param("cursor") {
        None => Ok(None),
        Some(c) => match hex::decode(c) {
            Ok(b) if !b.is_empty() => Ok(Some(b)),
            _ => bad(format!("cursor {c:?} is not one this API gave")),
        },
    }
}

/// The federation, when `tenant` is not wholly this service's ([`crate::federation`]).
fn elsewhere<'a>(api: &'a Api, tenant: &str) -> Option<&'a crate::federation::Federation> {
    api.federation
        .as_ref()
        .filter(|f| !crate::federation::covers(&f.owned, tenant))
}

/// Records gathered from every owner (parsed, with their bytes), or the reply saying why not.
type Gathered = Result<Vec<(veil_wire::Record, Vec<u8>)>, Reply>;

/// Every owner's valid records of `kind` in the filter's time range, parsed, then filtered
/// here too (site, device, stream, the key's stations), in [`data::federated_order`].
fn gathered(
    federation: &crate::federation::Federation,
    req: &Req,
    tenant: &str,
    kind: Kind,
    f: &Filter,
) -> Result<Gathered, Fail> {
    let token = req.bearer().unwrap_or_default();
    let records = match federation.gather(tenant, kind, f.from, f.to, token) {
        Ok(Ok(records)) => records,
        Ok(Err(unanswered)) => return Ok(Err(unanswered_reply(unanswered))),
        Err(e) => return Ok(Err(zenoh_unavailable(e))),
    };
    let mut out = Vec::new();
    for bytes in records {
        // The owners validated what they store; a record that does not parse is not served.
        let Ok(r) = veil_wire::Record::from_slice(&bytes) else {
            continue;
        };
        if r.tenant == tenant && r.kind == kind && f.admits(&r.site, &r.device, &r.stream) {
            out.push((r, bytes));
        }
    }
    out.sort_by_cached_key(|(r, _)| data::federated_order(r));
    Ok(Ok(out))
}

fn records(api: &Api, req: &Req, tenant: &str, key: &ApiKey, kind: Kind) -> Result<Reply, Fail> {
    let (f, limit, after) = (filter(req, key)?, limit(api, req)?, cursor(req)?);
    let page = match elsewhere(api, tenant) {
        None => data::page(&api.store, tenant, &[kind], &f, after.as_deref(), limit)?,
        Some(federation) => {
            let after = match after.as_deref().map(data::federated_cursor) {
                None => None,
                Some(Some(c)) => Some(c),
                Some(None) => return bad("cursor is not one this API gave"),
            };
            let all = match gathered(federation, req, tenant, kind, &f)? {
                Ok(all) => all,
                Err(reply) => return Ok(reply),
            };
            data::federated_page(all, after.as_ref(), limit)
        }
    };
    Ok(Reply {
        status: 200,
        headers: Vec::new(),
        body: Body::Raw("application/json", Bytes::from(page.to_json())),
    })
}

/// A forwarded read's items from every owner, merged in one order
/// ([`super::forwarded`]), or the reply saying why not.
fn forward(
    federation: &crate::federation::Federation,
    req: &Req,
    tenant: &str,
    read: Read,
    f: &Filter,
    id: Option<&str>,
) -> Result<Result<Vec<Value>, Reply>, Fail> {
    let token = req.bearer().unwrap_or_default();
    let parameters = super::forwarded::parameters(read, f, id);
    match federation.forward(tenant, &parameters, token) {
        Ok(Ok(mut items)) => {
            // The caller's scope here too: an owner's copy of the key may be wider.
            items.retain(|v| {
                let name = |n: &str| v[n].as_str();
                f.admits_known(name("site"), name("device"), name("stream"))
            });
            super::forwarded::order(read, &mut items);
            Ok(Ok(items))
        }
        Ok(Err(unanswered)) => Ok(Err(unanswered_reply(unanswered))),
        Err(e) => Ok(Err(zenoh_unavailable(e))),
    }
}

/// 502 when an owner refused, 504 when one did not answer.
fn unanswered_reply(unanswered: crate::federation::Unanswered) -> Reply {
    let status = match unanswered {
        crate::federation::Unanswered::Refused(_) => 502,
        crate::federation::Unanswered::Silent(_) => 504,
    };
    Reply::error(status, unanswered.to_string())
}

fn zenoh_unavailable(e: anyhow::Error) -> Reply {
    tracing::error!("federated read: {e:#}");
    Reply::error(
        503,
        "the other owners cannot be asked now (Zenoh): try again",
    )
}

/// Stored images, without their pixels: which part, decision, size and SHA-256, and the id to
/// fetch the JPEG with.
fn images(api: &Api, req: &Req, tenant: &str, key: &ApiKey) -> Result<Reply, Fail> {
    let (f, limit) = (filter(req, key)?, limit(api, req)?);
    let (items, next) = match elsewhere(api, tenant) {
        None => {
            let after = cursor(req)?;
            let (items, next) =
                super::forwarded::image_items(&api.store, tenant, &f, after.as_deref(), limit)?;
            (items, next.map(hex::encode).map(Value::from))
        }
        Some(federation) => match forward(federation, req, tenant, Read::Images, &f, None)? {
            Ok(all) => match super::forwarded::after_id(&all, req.param("cursor"), limit) {
                Ok(page) => page,
                Err(reason) => return bad(reason),
            },
            Err(reply) => return Ok(reply),
        },
    };
    Ok(Reply::json(
        200,
        json!({"items": items, "next_cursor": next}),
    ))
}

/// One stored image record by id, from this store or from the owner that has it.
fn image(
    api: &Api,
    req: &Req,
    tenant: &str,
    key: &ApiKey,
    id: &str,
) -> Result<Result<Option<veil_wire::Record>, Reply>, Fail> {
    let Some(federation) = elsewhere(api, tenant) else {
        return Ok(Ok(data::image(&api.store, tenant, &key.stations, id)?));
    };
    // Ids are hex; anything else names no image (and could not travel as a parameter).
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Ok(None));
    }
    let f = Filter::within(&key.stations);
    Ok(
        match forward(federation, req, tenant, Read::Image, &f, Some(id))? {
            Ok(items) => Ok(items
                .into_iter()
                .find_map(|v| serde_json::to_vec(&v).ok())
                .and_then(|bytes| veil_wire::Record::from_slice(&bytes).ok())),
            Err(reply) => Err(reply),
        },
    )
}

fn integrity(api: &Api, req: &Req, tenant: &str, key: &ApiKey) -> Result<Reply, Fail> {
    let (f, limit) = (filter(req, key)?, limit(api, req)?);
    let all = match elsewhere(api, tenant) {
        None => data::integrity(&api.store, tenant, &f)?,
        Some(federation) => match forward(federation, req, tenant, Read::Integrity, &f, None)? {
            Ok(all) => all,
            Err(reply) => return Ok(reply),
        },
    };
    let (items, next) = match super::forwarded::after_id(&all, req.param("cursor"), limit) {
        Ok(page) => page,
        Err(reason) => return bad(reason),
    };
    Ok(Reply::json(
        200,
        json!({"items": items, "next_cursor": next}),
    ))
}

fn json_body(req: &Req) -> Result<Value, Fail> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => bad("the body must be a JSON object"),
        Err(e) => bad(format!("the body is not JSON: {e}")),
    }
}

fn string_field(body: &Value, name: &str, max: usize) -> Result<Option<String>, Fail> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => bad(format!("{name} is longer than {max} characters")),
        Some(_) => bad(format!("{name} must be a string")),
    }
}

fn acknowledge(api: &Api, req: &Req, tenant: &str, key: &ApiKey, id: &str) -> Result<Reply, Fail> {
    // One spelling per alert (hex decodes either case).
    let id = &id.to_ascii_lowercase();
    let body = json_body(req)?;
    let note_text = string_field(&body, "note", 500)?;
    if !data::integrity_exists(&api.store, tenant, &key.stations, id)? {
        return Ok(Reply::not_found());
    }
    let ack = json!({"by": format!("key:{}", key.id), "time": veil_wire::record::format_time(now_ns()), "note": note_text});
    api.store
        .put(tenant, "acks", id.as_bytes(), &serde_json::to_vec(&ack)?)?;
    api.store.flush()?;
    note(
        api,
        req,
        key,
        "integrity.acknowledge",
        "success",
        json!({"alert": id}),
    );
    Ok(Reply::json(200, json!({"id": id, "acknowledged": ack})))
}

fn rollups(
    api: &Api,
    req: &Req,
    tenant: &str,
    key: &ApiKey,
    dimension: &str,
) -> Result<Reply, Fail> {
    let Some(dim) = Dimension::parse(dimension) else {
        return bad(format!(
            "dimension {dimension:?}: use hour, hour-of-day, day-of-week, weekday-hour, day, zone, flow or line"
        ));
    };
    let f = filter(req, key)?;
    let offset = match req.param("utc_offset_minutes") {
        None => 0,
        Some(v) => match v.parse::<i32>() {
            Ok(n) if (-720..=840).contains(&n) => n,
            _ => return bad(format!("utc_offset_minutes={v:?}: from -720 to 840")),
        },
    };
    let mut windows = Vec::new();
    match elsewhere(api, tenant) {
        None => data::scan(&api.store, tenant, &[Kind::Metrics], &f, None, |_, r| {
            windows.push(r.body);
            Ok(true)
        })?,
        // Every owner's windows, then one roll-up over all of them.
        Some(federation) => match gathered(federation, req, tenant, Kind::Metrics, &f)? {
            Ok(all) => windows.extend(all.into_iter().map(|(r, _)| r.body)),
            Err(reply) => return Ok(reply),
        },
    }
    let buckets = match dim {
        Dimension::Zone => serde_json::to_value(rollup::by_zone(&windows))?,
        Dimension::Flow => serde_json::to_value(rollup::by_flow(&windows))?,
        Dimension::Line => serde_json::to_value(rollup::by_line(&windows))?,
        _ => serde_json::to_value(rollup::by_time(dim, &windows, offset))?,
    };
    Ok(Reply::json(
        200,
        json!({"dimension": dimension, "windows": windows.len(), "utc_offset_minutes": offset, "buckets": buckets}),
    ))
}

const METRICS_COLUMNS: [&str; 12] = [
    "site",
    "device",
    "stream",
    "seq",
    "capture_time",
    "window_start",
    "window_end",
    "partial",
    "opportunities_to_see",
    "watchers",
    "dwell_time_s",
    "attention_time_s",
];
const GENERIC_COLUMNS: [&str; 8] = [
    "site",
    "device",
    "stream",
    "kind",
    "seq",
    "capture_time",
    "hash",
    "body",
];

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One record as a CSV row (metrics flattened, dwell bands as columns; other kinds with the
/// body as JSON).
fn csv_row(r: &veil_wire::Record) -> String {
    let cells: Vec<String> = if r.kind == Kind::Metrics {
        let mut cells = vec![
            r.site.clone(),
            r.device.clone(),
            r.stream.clone(),
            r.seq.to_string(),
            r.capture_time.clone(),
        ];
        for c in &METRICS_COLUMNS[5..] {
            cells.push(scalar(&r.body[*c]));
        }
        for band in DwellBand::ALL {
            cells.push(scalar(&r.body["dwell_bands"][band.label()]));
        }
        cells.push(r.hash.clone());
        cells
    } else {
        vec![
            r.site.clone(),
            r.device.clone(),
            r.stream.clone(),
            r.kind.as_str().into(),
            r.seq.to_string(),
            r.capture_time.clone(),
            r.hash.clone(),
            r.body.to_string(),
        ]
    };
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn csv_header(kind: Kind) -> String {
    let mut cols: Vec<&str> = if kind == Kind::Metrics {
        let mut c = METRICS_COLUMNS.to_vec();
        c.extend(DwellBand::ALL.map(DwellBand::label));
        c.push("hash");
        c
    } else {
        GENERIC_COLUMNS.to_vec()
    };
    cols.dedup();
    format!("{}\r\n", cols.join(","))
}

fn export(api: &Api, req: &Req, tenant: &str, key: &ApiKey) -> Result<Reply, Fail> {
    let kind_text = req.param("kind").unwrap_or("metrics");
    let kind = match Kind::parse(kind_text) {
        Some(k) if k != Kind::Image && k != Kind::Detections => k,
        _ => {
            return bad(format!(
                "kind={kind_text:?}: metrics, event, integrity, checkpoint, config, inspection or compliance"
            ));
        }
    };
    let format = req.param("format").unwrap_or("jsonl").to_owned();
    let content_type = match format.as_str() {
        "csv" => "text/csv; charset=utf-8",
        "jsonl" => "application/jsonl",
        other => return bad(format!("format={other:?}: csv or jsonl")),
    };
    let f = filter(req, key)?;
    let disposition = (
        "content-disposition",
        format!(
            "attachment; filename=\"veil-{}.{}\"",
            kind.as_str(),
            req.param("format").unwrap_or("jsonl")
        ),
    );
    if let Some(federation) = elsewhere(api, tenant) {
        // Every owner's records, merged in one order, as one body.
        let all = match gathered(federation, req, tenant, kind, &f)? {
            Ok(all) => all,
            Err(reply) => return Ok(reply),
        };
        let mut body = match format.as_str() {
            "csv" => csv_header(kind).into_bytes(),
            _ => Vec::new(),
        };
        for (_, bytes) in &all {
            export_line(&format, bytes, &mut body)?;
        }
        let detail = json!({"kind": kind.as_str(), "format": format, "site": f.site, "device": f.device,
            "stream": f.stream, "from": req.param("from"), "to": req.param("to"),
            "records": all.len(), "forwarded": true});
        note(api, req, key, "export", "success", detail);
        return Ok(Reply {
            status: 200,
            headers: vec![disposition],
            body: Body::Raw(content_type, Bytes::from(body)),
        });
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let store = api.store.clone();
    let audit = api.audit.clone();
    let (tenant, actor, ip) = (
        tenant.to_owned(),
        format!("key:{}", key.id),
        req.peer.to_string(),
    );
    let detail = json!({"kind": kind.as_str(), "format": format, "site": f.site, "device": f.device,
                        "stream": f.stream, "from": req.param("from"), "to": req.param("to")});
    std::thread::spawn(move || {
        let mut count = 0u64;
        let mut chunk = if format == "csv" {
            csv_header(kind).into_bytes()
        } else {
            Vec::new()
        };
        let mut aborted = false;
        let result = data::scan_raw(&store, &tenant, &[kind], &f, None, |_, bytes| {
            export_line(&format, &bytes, &mut chunk)?;
            count += 1;
            if chunk.len() >= 64 * 1024
                && tx
                    .blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                    .is_err()
            {
                aborted = true;
                return Ok(false);
            }
            Ok(true)
        });
        let outcome = match result {
            Ok(()) if !aborted => {
                let sent = chunk.is_empty() || tx.blocking_send(Ok(Bytes::from(chunk))).is_ok();
                if sent { "success" } else { "failure" }
            }
            Ok(()) => "failure",
            Err(e) => {
                tracing::error!("export: {e:#}");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                "failure"
            }
        };
        let mut detail = detail;
        detail["records"] = count.into();
        audit.note(
            &store,
            Action {
                actor: &actor,
                tenant: Some(&tenant),
                source_ip: Some(&ip),
                action: "export",
                outcome,
                detail,
            },
        );
    });
    Ok(Reply {
        status: 200,
        headers: vec![disposition],
        body: Body::Stream(content_type, rx),
    })
}

/// One exported line: a CSV row, or the record's JSON on one line (as stored: the device's
/// own bytes, validated at ingest, unless it sent pretty-printed JSON).
fn export_line(format: &str, bytes: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
    if format == "csv" {
        out.extend_from_slice(csv_row(&veil_wire::Record::from_slice(bytes)?).as_bytes());
    } else if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
        let record = veil_wire::Record::from_slice(bytes)?;
        out.extend_from_slice(&serde_json::to_vec(&record)?);
        out.push(b'\n');
    } else {
        out.extend_from_slice(bytes);
        out.push(b'\n');
    }
    Ok(())
}

fn scopes_field(body: &Value) -> Result<Option<BTreeSet<Scope>>, Fail> {
    match body.get("scopes") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            let mut out = BTreeSet::new();
            for item in items {
                match item.as_str().and_then(Scope::parse) {
                    Some(s) => {
                        out.insert(s);
                    }
                    None => {
                        return bad(format!(
                            "unknown scope {item}: read, write, analytics, export, webhooks, images, admin"
                        ));
                    }
                }
            }
            Ok(Some(out))
        }
        Some(_) => bad("scopes must be an array of scope names"),
    }
}

/// The body's `stations` (`{"sites": [...], "devices": [...], "streams": [...]}`), names
/// checked; `None` when absent.
fn stations_field(body: &Value) -> Result<Option<Stations>, Fail> {
    const MAX_NAMES: usize = 100;
    let raw: Stations = match body.get("stations") {
        None | Some(Value::Null) => return Ok(None),
        // A name twice is a mistake the sets below would hide.
        Some(Value::Object(axes))
            if axes.values().any(|names| {
                names.as_array().is_some_and(|list| {
                    let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                    let distinct: std::collections::HashSet<&&str> = names.iter().collect();
                    names.len() == list.len() && distinct.len() != names.len()
                })
            }) =>
        {
            return bad("stations: a name is listed twice");
        }
        Some(v) => match serde_json::from_value(v.clone()) {
            Ok(s) => s,
            Err(e) => return bad(format!("stations: {e}")),
        },
    };
    let names = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
    if [&raw.sites, &raw.devices, &raw.streams]
        .iter()
        .any(|set| set.len() > MAX_NAMES)
    {
        return bad(format!("stations: at most {MAX_NAMES} names per list"));
    }
    match Stations::new(
        &names(&raw.sites),
        &names(&raw.devices),
        &names(&raw.streams),
    ) {
        Ok(s) => Ok(Some(s)),
        Err(e) => bad(format!("stations: {e}")),
    }
}

/// The station scope of something `key` creates (`action`: a key, a subscription): the
/// body's, which must lie inside the caller's own; by default the caller's. `Err` is the 403
/// answer, the refusal already in the audit log.
fn granted_stations(
    api: &Api,
    req: &Req,
    key: &ApiKey,
    body: &Value,
    action: &str,
) -> Result<Result<Stations, Reply>, Fail> {
    Ok(match stations_field(body)? {
        None => Ok(key.stations.clone()),
        Some(s) if key.stations.covers(&s) => Ok(s),
        Some(_) => {
            let reason = "this key cannot grant stations beyond its own";
            note(api, req, key, action, "denied", json!({"reason": reason}));
            Err(Reply::error(403, reason))
        }
    })
}

fn create_key(api: &Api, req: &Req, tenant: &str, key: &ApiKey) -> Result<Reply, Fail> {
    let body = json_body(req)?;
    let name = string_field(&body, "name", 100)?.unwrap_or_default();
    let role = match string_field(&body, "role", 20)? {
        None => None,
        Some(r) => match Role::parse(&r) {
            Some(role) => Some(role),
            None => return bad(format!("role {r:?}: operator, engineer or admin")),
        },
    };
    let scopes = scopes_field(&body)?;
    let tier = string_field(&body, "tier", 50)?.unwrap_or_else(|| "standard".into());
    if !api.has_tier(&tier) {
        return bad(format!("tier {tier:?} is not configured"));
    }
    let expires = string_field(&body, "expires", 40)?;
    // A key born expired is a mistake (a date in the past), as on the command line.
    if let Some(e) = &expires
        && veil_wire::record::parse_time(e).is_some_and(|t| t <= now_ns())
    {
        return bad(format!("expires {e} is in the past"));
    }
    if role.is_none() && scopes.as_ref().is_none_or(BTreeSet::is_empty) {
        return bad("a key needs a role or at least one scope");
    }
    // A key never hands out more than it holds.
    let wanted = match (role, &scopes) {
        (_, Some(s)) => s.clone(),
        (Some(r), None) => r.scopes(),
        (None, None) => BTreeSet::new(),
    };
    if let Some(s) = wanted.iter().find(|s| !key.has(**s)) {
        note(
            api,
            req,
            key,
            "key.create",
            "denied",
            json!({"reason": format!("scope {} beyond the caller's", s.as_str())}),
        );
        return Ok(Reply::error(
            403,
            format!("this key cannot grant the {} scope it lacks", s.as_str()),
        ));
    }
    let stations = match granted_stations(api, req, key, &body, "key.create")? {
        Ok(s) => s,
        Err(refused) => return Ok(refused),
    };
    let new = NewKey {
        tenant: tenant.to_owned(),
        name,
        role,
        scopes,
        tier,
        expires,
        stations,
    };
    match api.keys.create(&api.store, new, now_ns()) {
        Ok((created, token)) => {
            note(
                api,
                req,
                key,
                "key.create",
                "success",
                json!({"key": created.id, "scopes": created.scopes, "tier": created.tier,
                        "expires": created.expires, "stations": created.stations.public()}),
            );
            let _ = api.store.flush();
            Ok(Reply::json(
                201,
                json!({"key": created.public(), "token": token}),
            ))
        }
        Err(e) => bad(e.to_string()),
    }
}

fn create_webhook(api: &Api, req: &Req, tenant: &str, key: &ApiKey) -> Result<Reply, Fail> {
    let body = json_body(req)?;
    let Some(url) = string_field(&body, "url", 2000)? else {
        return bad("url is required");
    };
    let events: BTreeSet<String> = match body.get("events") {
        Some(Value::Array(items)) => {
            let mut out = BTreeSet::new();
            for i in items {
                match i.as_str() {
                    Some(s) => {
                        out.insert(s.to_owned());
                    }
                    None => return bad("events must be strings"),
                }
            }
            out
        }
        _ => return bad("events is required: an array of event types"),
    };
    let description = string_field(&body, "description", 200)?.unwrap_or_default();
    let stations = match granted_stations(api, req, key, &body, "webhook.create")? {
        Ok(s) => s,
        Err(refused) => return Ok(refused),
    };
    match crate::webhooks::create(
        &api.store,
        tenant,
        crate::webhooks::NewSubscription {
            url: &url,
            events,
            description: &description,
            stations,
        },
        &api.webhook_policy,
    )? {
        Ok(sub) => {
            note(
                api,
                req,
                key,
                "webhook.create",
                "success",
                json!({"webhook": sub.id, "url": sub.url, "events": sub.events}),
            );
            Ok(Reply::json(
                201,
                json!({"webhook": sub.public(), "secret": sub.secret}),
            ))
        }
        Err(reason) => bad(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(
            csv_header(Kind::Metrics).trim_end().split(',').count(),
            METRICS_COLUMNS.len() + 6
        );
    }
}
