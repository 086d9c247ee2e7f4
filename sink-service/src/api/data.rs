// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading a tenant's stored data for the API: valid records by kind with filters and cursor
//! pagination, integrity alerts (the devices' own and the service's), and acknowledgements.

use serde_json::{Value, json};
use veil_wire::{Kind, Record};

use crate::stations::Stations;
use crate::store::{Store, is_valid, key_seq, parse_record_key, series_prefix};

/// Which records: site/device/stream (all when `None`), capture time `[from, to)` in ns, and
/// always within the asking key's station scope.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub site: Option<String>,
    pub device: Option<String>,
    pub stream: Option<String>,
    pub from: u64,
    pub to: u64,
    pub stations: Stations,
}

impl Filter {
    /// Everything the key's scope holds (no other filter).
    pub fn within(stations: &Stations) -> Filter {
        Filter {
            to: u64::MAX,
            stations: stations.clone(),
            ..Filter::default()
        }
    }

    pub fn admits(&self, site: &str, device: &str, stream: &str) -> bool {
        self.admits_known(Some(site), Some(device), Some(stream))
    }

    /// [`Filter::admits`] for something whose names may be unknown: an unknown name passes
    /// only where neither the request nor the scope asks for one.
    pub fn admits_known(
        &self,
        site: Option<&str>,
        device: Option<&str>,
        stream: Option<&str>,
    ) -> bool {
        let wanted = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        wanted(&self.site, site)
            && wanted(&self.device, device)
            && wanted(&self.stream, stream)
            && self.stations.admits_known(site, device, stream)
    }
}

/// One page: the records as stored (the devices' own JSON, validated at ingest) and the cursor
/// of the next page, if there is one.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Vec<u8>>,
    /// The records keys of the items (ids of images).
    pub keys: Vec<Vec<u8>>,
    pub next: Option<Vec<u8>>,
}

impl Page {
    /// `{"items":[…],"next_cursor":…}` with the stored records copied in, not re-encoded.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.items.iter().map(|i| i.len() + 1).sum::<usize>() + 64);
        out.extend_from_slice(b"{\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.extend_from_slice(b"],\"next_cursor\":");
        match &self.next {
            Some(c) => {
                out.push(b'"');
                out.extend_from_slice(hex::encode(c).as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        out
    }
}

/// Visits the valid records of `kinds` matching `filter`, parsed, in key order (series, then
/// capture time), strictly after `after`; `visit` returns false to stop.
pub fn scan(
    store: &Store,
    tenant: &str,
    kinds: &[Kind],
    filter: &Filter,
    after: Option<&[u8]>,
    mut visit: impl FnMut(&[u8], Record) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    scan_raw(store, tenant, kinds, filter, after, |key, bytes| {
        visit(key, Record::from_slice(&bytes)?)
    })
}

/// [`scan`] with the records as stored (decrypted, not parsed).
pub fn scan_raw(
    store: &Store,
    tenant: &str,
    kinds: &[Kind],
    filter: &Filter,
    after: Option<&[u8]>,
    mut visit: impl FnMut(&[u8], Vec<u8>) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let records = store.tree("records", tenant)?;
    let mut series = Vec::new();
    for (device, stream, state) in store.units(tenant)? {
        if !filter.admits(&state.site, &device, &stream) {
            continue;
        }
        let unit = store.unit_of(tenant, &state);
        for &kind in kinds {
            series.push((series_prefix(&unit, kind.as_str()), kind, state.clone()));
        }
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let after_key: Option<Vec<u8>> = after.map(|a| [a, &[0u8]].concat());
    for (prefix, kind, state) in series {
        let mut start = [prefix.as_slice(), &filter.from.to_be_bytes()].concat();
        let end = [prefix.as_slice(), &filter.to.to_be_bytes()].concat();
        if let Some(a) = &after_key
            && *a > start
        {
            start = a.clone();
        }
        if start >= end {
            continue;
        }
        for item in records.range(start..end) {
            let (key, _) = item?;
            if !is_valid(kind, key_seq(&key), Some(&state)) {
                continue;
            }
            let Some(bytes) = store.get(tenant, "records", &key)? else {
                continue;
            };
            if !visit(&key, bytes)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The order of a federated listing ([`crate::federation`]): site, device, stream, capture
/// time (ns), sequence number — the same series-then-time order as a local one, by name.
pub type FederatedCursor = (String, String, String, u64, u64);

/// A record's place in a federated listing.
pub fn federated_order(r: &Record) -> FederatedCursor {
    (
        r.site.clone(),
        r.device.clone(),
        r.stream.clone(),
        crate::ingest::capture_ns(r),
        r.seq,
    )
}

/// A federated cursor (JSON of [`FederatedCursor`]); `None` for anything else.
pub fn federated_cursor(bytes: &[u8]) -> Option<FederatedCursor> {
    serde_json::from_slice(bytes).ok()
}

/// A page of at most `limit` of `all` (sorted by [`federated_order`]) after `after`; the
/// next cursor names the last item's place.
pub fn federated_page(
    all: Vec<(Record, Vec<u8>)>,
    after: Option<&FederatedCursor>,
    limit: usize,
) -> Page {
    let mut page = Page::default();
    let mut rest = all
        .into_iter()
        .filter(|(r, _)| after.is_none_or(|a| federated_order(r) > *a))
        .peekable();
    let mut last = None;
    while page.items.len() < limit {
        let Some((r, bytes)) = rest.next() else {
            break;
        };
        last = Some(federated_order(&r));
        page.items.push(bytes);
    }
    if rest.peek().is_some() {
        page.next = last.and_then(|c| serde_json::to_vec(&c).ok());
    }
    page
}

/// A page of at most `limit` records.
pub fn page(
    store: &Store,
    tenant: &str,
    kinds: &[Kind],
    filter: &Filter,
    after: Option<&[u8]>,
    limit: usize,
) -> anyhow::Result<Page> {
    let mut page = Page::default();
    let mut last = Vec::new();
    scan_raw(store, tenant, kinds, filter, after, |key, record| {
        if page.items.len() == limit {
            // One more exists: the page ends at the last one taken.
            page.next = Some(last.clone());
            return Ok(false);
        }
        last = key.to_vec();
        page.keys.push(last.clone());
        page.items.push(record);
        Ok(true)
    })?;
    Ok(page)
}

/// The tenant's streams inside `stations`: site, device, stream, the records per kind, the
/// capture time of the newest valid record (checkpoints aside: they say nothing of the scene),
/// the chain's head.
pub fn streams(store: &Store, tenant: &str, stations: &Stations) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (device, stream, state) in store.units(tenant)? {
        if !stations.admits(&state.site, &device, &stream) {
            continue;
        }
        let records = store.tree("records", tenant)?;
        let unit = store.unit_of(tenant, &state);
        let mut kinds = serde_json::Map::new();
        let mut last: Option<(u64, String)> = None;
        for kind in Kind::ALL {
            let valid = |k: &sled::IVec| is_valid(kind, key_seq(k), Some(&state));
            let prefix = series_prefix(&unit, kind.as_str());
            let n = records
                .scan_prefix(&prefix)
                .keys()
                .filter_map(|k| k.ok())
                .filter(valid)
                .count();
            if n == 0 {
                continue;
            }
            kinds.insert(kind.as_str().into(), n.into());
            if kind == Kind::Checkpoint {
                continue;
            }
            let newest = records
                .scan_prefix(&prefix)
                .keys()
                .rev()
                .filter_map(|k| k.ok())
                .find(valid);
            if let Some(key) = newest
                && let Some(bytes) = store.get(tenant, "records", &key)?
                && let Ok(r) = Record::from_slice(&bytes)
            {
                let at = veil_wire::record::parse_time(&r.capture_time).unwrap_or(0);
                if last.as_ref().is_none_or(|(t, _)| at > *t) {
                    last = Some((at, r.capture_time));
                }
            }
        }
        out.push(json!({
            "site": state.site, "device": device, "stream": stream, "records": kinds,
            "last_capture_time": last.map(|(_, t)| t),
            "chain_epoch": state.epoch, "chain_seq": state.chain.next_seq.saturating_sub(1),
            "signed_upto": state.chain.signed_upto,
        }));
    }
    Ok(out)
}

/// Integrity alerts of a tenant in `[from, to)`, oldest first: the devices' `integrity`
/// records (`d-` ids) and what the service itself found (`s-` ids: gaps, conflicts, chain
/// breaks, untrusted keys), each with its acknowledgement if any.
pub fn integrity(store: &Store, tenant: &str, filter: &Filter) -> anyhow::Result<Vec<Value>> {
    let acks = store.tree("acks", tenant)?;
    let acknowledged = |id: &str| -> anyhow::Result<Value> {
        Ok(match acks.get(id.as_bytes())? {
            Some(_) => store
                .get(tenant, "acks", id.as_bytes())?
                .and_then(|v| serde_json::from_slice(&v).ok())
                .unwrap_or(Value::Null),
            None => Value::Null,
        })
    };
    let mut out: Vec<(u64, Value)> = Vec::new();
    scan(store, tenant, &[Kind::Integrity], filter, None, |key, r| {
        let id = format!("d-{}", hex::encode(key));
        let time = veil_wire::record::parse_time(&r.capture_time).unwrap_or(0);
        out.push((time, json!({
            "id": id, "source": "device", "time": r.capture_time, "site": r.site, "device": r.device,
            "stream": r.stream, "type": r.body.get("type").cloned().unwrap_or(Value::Null),
            "detail": r.body, "acknowledged": acknowledged(&id)?,
        })));
        Ok(true)
    })?;
    let events = store.tree("events", tenant)?;
    for item in events.iter() {
        let (key, _) = item?;
        let time = key_seq(&key[..8.min(key.len())]);
        if time < filter.from || time >= filter.to {
            continue;
        }
        let Some(event) = service_event(store, tenant, &key)? else {
            continue;
        };
        let (site, device, stream) = event_names(store, tenant, &event)?;
        if !filter.admits_known(site.as_deref(), device, stream) {
            continue;
        }
        let id = format!("s-{}", hex::encode(&key));
        out.push((
            time,
            json!({
                "id": id, "source": "service", "time": veil_wire::record::format_time(time),
                "site": site, "device": device, "stream": stream,
                "type": event.get("type").cloned().unwrap_or(Value::Null),
                "detail": event, "acknowledged": acknowledged(&id)?,
            }),
        ));
    }
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1["id"].as_str().cmp(&b.1["id"].as_str()))
    });
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// A service integrity event of this tenant (tree `events`), parsed.
fn service_event(store: &Store, tenant: &str, key: &[u8]) -> anyhow::Result<Option<Value>> {
    match store.get(tenant, "events", key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// The site, device and stream a service event is about, as far as known: the event names
/// device and stream (when it concerns one); the site is the stream's, if it is stored.
fn event_names<'e>(
    store: &Store,
    tenant: &str,
    event: &'e Value,
) -> anyhow::Result<(Option<String>, Option<&'e str>, Option<&'e str>)> {
    let device = event.get("device").and_then(Value::as_str);
    let stream = event.get("stream").and_then(Value::as_str);
    // Events the service raises now name their site; older ones: the stream's first chain's.
    let site = match (event.get("site").and_then(Value::as_str), device, stream) {
        (Some(site), _, _) => Some(site.to_owned()),
        (None, Some(d), Some(s)) => store.unit_state(tenant, d, s, 0)?.map(|state| state.site),
        _ => None,
    };
    Ok((site, device, stream))
}

/// Whether an integrity alert id names something of this tenant inside `stations`.
pub fn integrity_exists(
    store: &Store,
    tenant: &str,
    stations: &Stations,
    id: &str,
) -> anyhow::Result<bool> {
    let Some((source, key)) = id.split_once('-') else {
        return Ok(false);
    };
    let Ok(key) = hex::decode(key) else {
        return Ok(false);
    };
    Ok(match source {
        "s" => match service_event(store, tenant, &key)? {
            Some(event) => {
                let (site, device, stream) = event_names(store, tenant, &event)?;
                stations.admits_known(site.as_deref(), device, stream)
            }
            None => false,
        },
        "d" => match parse_record_key(&key) {
            Some(at) if at.kind == Kind::Integrity.as_str() => {
                unit_admitted(store, tenant, stations, &at.unit)?
                    && store.tree("records", tenant)?.contains_key(&key)?
            }
            _ => false,
        },
        _ => false,
    })
}

/// Whether a unit (by id) is one of the tenant's and inside `stations`.
fn unit_admitted(
    store: &Store,
    tenant: &str,
    stations: &Stations,
    unit: &crate::store::UnitId,
) -> anyhow::Result<bool> {
    Ok(store
        .unit_state_by_id(tenant, unit)?
        .is_some_and(|s| stations.admits(&s.site, &s.device, &s.stream)))
}

/// A stored image of this tenant inside `stations` by id (the hex of its records key): its
/// record, if valid.
pub fn image(
    store: &Store,
    tenant: &str,
    stations: &Stations,
    id: &str,
) -> anyhow::Result<Option<Record>> {
    let Ok(key) = hex::decode(id) else {
        return Ok(None);
    };
    let Some(at) = parse_record_key(&key) else {
        return Ok(None);
    };
    if at.kind != Kind::Image.as_str() || !unit_admitted(store, tenant, stations, &at.unit)? {
        return Ok(None);
    }
    let state = store.unit_state_by_id(tenant, &at.unit)?;
    if !is_valid(Kind::Image, at.seq, state.as_ref()) {
        return Ok(None);
    }
    match store.get(tenant, "records", &key)? {
        Some(bytes) => Ok(Some(Record::from_slice(&bytes)?)),
        None => Ok(None),
    }
}
