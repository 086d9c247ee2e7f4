// SPDX-License-Identifier: MIT OR Apache-2.0
//! The front door's reads that are not record listings ([`crate::federation`]): a tenant's
//! streams, integrity alerts and stored images (list and one image), when other stores own
//! the tenant wholly or in part.
//!
//! The front door sends one Zenoh query `veil/<tenant>/**?api=<read>;<filter>;answered` with
//! the caller's API key attached. Each owner answers per owned set, from its own store: the
//! answered marker of that set (`veil-store/answered/<store id>/<hex of the set>`) carries a
//! JSON array of the set's items, read with the key as the owner knows it (scope and station
//! scope checked there). The front door concatenates the owners' arrays, sorts them in one
//! order ([`order`]) and cuts pages with a cursor naming the last item's id ([`after_id`]).
//! What an owner stores outside its owned sets (records of a set it gave away) is not
//! answered, so nothing is counted twice.

use serde_json::{Value, json};
use veil_wire::{Kind, Record};

use super::data::{self, Filter};
use super::keys::{ApiKey, Scope};
use crate::store::Store;

/// The selector parameter naming a forwarded read.
pub const API_PARAMETER: &str = "api";

/// A read the front door forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Streams,
    Integrity,
    Images,
    /// One image, by the id the image list gave (`id` parameter).
    Image,
}

impl Read {
    pub fn as_str(self) -> &'static str {
        match self {
            Read::Streams => "streams",
            Read::Integrity => "integrity",
            Read::Images => "images",
            Read::Image => "image",
        }
    }

    pub fn parse(text: &str) -> Option<Read> {
        [Read::Streams, Read::Integrity, Read::Images, Read::Image]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    /// The scope the caller's key needs, as on the HTTPS route.
    pub fn scope(self) -> Scope {
        match self {
            Read::Streams | Read::Integrity => Scope::Read,
            Read::Images | Read::Image => Scope::Images,
        }
    }
}

/// The selector parameters of a forwarded read: the filter's names and capture-time range (ns)
/// and, for one image, its id. Names and ids are checked before (no `;` or `=` in them).
pub fn parameters(read: Read, f: &Filter, id: Option<&str>) -> String {
    let mut out = format!(
        "{API_PARAMETER}={};from={};to={}",
        read.as_str(),
        f.from,
        f.to
    );
    for (name, value) in [
        ("site", f.site.as_deref()),
        ("device", f.device.as_deref()),
        ("stream", f.stream.as_deref()),
        ("id", id),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(";{name}={v}"));
        }
    }
    out
}

/// The filter an owner reads a forwarded request with, within the station scope of the key
/// it checked itself.
///
/// Errors: a name that is not a valid name, a time that is not a number of ns, `from > to`.
pub fn filter_of(get: &dyn Fn(&str) -> Option<String>, key: &ApiKey) -> Result<Filter, String> {
    let name = |n: &'static str| -> Result<Option<String>, String> {
        match get(n) {
            None => Ok(None),
            Some(v) => veil_wire::names::check_name(n, &v)
                .map(|()| Some(v))
                .map_err(|e| e.to_string()),
        }
    };
    let time = |n: &str, default: u64| -> Result<u64, String> {
        match get(n) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{n}={v:?} is not a time in ns")),
        }
    };
    let f = Filter {
        site: name("site")?,
        device: name("device")?,
        stream: name("stream")?,
        from: time("from", 0)?,
        to: time("to", u64::MAX)?,
        stations: key.stations.clone(),
    };
    if f.from > f.to {
        return Err("from is after to".into());
    }
    Ok(f)
}

/// Whether an item (a stream, alert or image of `read`) is the answering set's to answer.
pub type InSet<'a> = dyn Fn(Read, &Value) -> bool + 'a;

/// The record key an item stands for, as a key expression: its site, device and stream (`*`
/// where it names none) and the kind of record it comes from (`*` for a stream, which holds
/// every kind, and for the service's own integrity events).
pub fn item_key(tenant: &str, read: Read, item: &Value) -> String {
    let name = |n: &str| item[n].as_str().unwrap_or("*").to_owned();
    let kind = match read {
        Read::Images | Read::Image => "image",
        Read::Integrity if item["source"] == "device" => "integrity",
        _ => "*",
    };
    format!(
        "veil/{tenant}/{}/{}/{}/{kind}",
        name("site"),
        name("device"),
        name("stream")
    )
}

/// An owner's answer to a forwarded read of `tenant`, one owned set's part: the items
/// `in_set` gives this set.
///
/// Errors: the store's, and a bad parameter.
pub fn answer(
    store: &Store,
    tenant: &str,
    key: &ApiKey,
    read: Read,
    get: &dyn Fn(&str) -> Option<String>,
    in_set: &InSet<'_>,
) -> anyhow::Result<Vec<Value>> {
    let f = filter_of(get, key).map_err(|e| anyhow::anyhow!("400 {e}"))?;
    let items = match read {
        // As on the HTTPS route: every stream the key's station scope holds.
        Read::Streams => data::streams(store, tenant, &key.stations)?,
        Read::Integrity => data::integrity(store, tenant, &f)?,
        Read::Images => image_items(store, tenant, &f, None, usize::MAX)?.0,
        Read::Image => {
            let id = get("id").unwrap_or_default();
            match data::image(store, tenant, &key.stations, &id)? {
                Some(record) => vec![serde_json::to_value(&record)?],
                None => Vec::new(),
            }
        }
    };
    Ok(items.into_iter().filter(|v| in_set(read, v)).collect())
}

/// Stored images in `f` after the record key `after`, at most `limit`, without their pixels:
/// which part, decision, size and SHA-256, and the id to fetch the JPEG with; and the cursor
/// of the next page.
///
/// Errors: the store's.
pub fn image_items(
    store: &Store,
    tenant: &str,
    f: &Filter,
    after: Option<&[u8]>,
    limit: usize,
) -> anyhow::Result<(Vec<Value>, Option<Vec<u8>>)> {
    let page = data::page(store, tenant, &[Kind::Image], f, after, limit)?;
    let mut items = Vec::new();
    for (bytes, key) in page.items.iter().zip(&page.keys) {
        let r = Record::from_slice(bytes)?;
        let b = &r.body;
        items.push(json!({
            "id": hex::encode(key), "site": r.site, "device": r.device, "stream": r.stream,
            "seq": r.seq, "capture_time": r.capture_time, "part": b["part"], "decision": b["decision"],
            "format": b["format"], "width": b["width"], "height": b["height"], "bytes": b["bytes"],
            "sha256": b["sha256"],
        }));
    }
    Ok((items, page.next))
}

/// The owners' items in one order: streams by site, device, stream; integrity alerts by time
/// then id (as one store lists them); images by site, device, stream, capture time, seq.
pub fn order(read: Read, items: &mut [Value]) {
    let text = |v: &Value, name: &str| v[name].as_str().unwrap_or("").to_owned();
    let time = |v: &Value, name: &str| {
        v[name]
            .as_str()
            .and_then(veil_wire::record::parse_time)
            .unwrap_or(0)
    };
    match read {
        Read::Streams => {
            items.sort_by_cached_key(|v| (text(v, "site"), text(v, "device"), text(v, "stream")))
        }
        Read::Integrity => items.sort_by_cached_key(|v| (time(v, "time"), text(v, "id"))),
        Read::Images | Read::Image => items.sort_by_cached_key(|v| {
            (
                text(v, "site"),
                text(v, "device"),
                text(v, "stream"),
                time(v, "capture_time"),
                v["seq"].as_u64().unwrap_or(0),
            )
        }),
    }
}

/// At most `limit` of `all` after the item whose id is `cursor`, and the next cursor (the last
/// item's id) when more follow.
///
/// Errors: a cursor naming no item (not one this API gave, or its item is gone).
pub fn after_id(
    all: &[Value],
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<Value>, Option<Value>), String> {
    let start = match cursor {
        None => 0,
        Some(c) => match all.iter().position(|a| a["id"] == c) {
            Some(i) => i + 1,
            None => return Err(format!("cursor {c:?} is not one this API gave")),
        },
    };
    let items: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let next = (start + items.len() < all.len())
        .then(|| items.last().map(|a| a["id"].clone()))
        .flatten();
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_name_the_read_and_only_the_filters_given() {
        let f = Filter {
            site: Some("hq".into()),
            from: 5,
            to: 9,
            ..Filter::default()
        };
        assert_eq!(
            parameters(Read::Images, &f, None),
            "api=images;from=5;to=9;site=hq"
        );
        assert_eq!(
            parameters(Read::Image, &Filter::default(), Some("ab")),
            "api=image;from=0;to=0;id=ab"
        );
        for r in [Read::Streams, Read::Integrity, Read::Images, Read::Image] {
            assert_eq!(Read::parse(r.as_str()), Some(r));
        }
        assert_eq!(Read::parse("keys"), None);
    }

    #[test]
    fn pages_over_merged_items_follow_the_last_id() {
        let mut all: Vec<Value> = [("b", "2026-01-01T00:00:02Z"), ("a", "2026-01-01T00:00:01Z")]
            .iter()
            .chain(&[("c", "2026-01-01T00:00:02Z")])
            .map(|(id, t)| json!({"id": id, "time": t}))
            .collect();
        order(Read::Integrity, &mut all);
        let ids: Vec<&str> = all.iter().map(|v| v["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let (first, next) = after_id(&all, None, 2).unwrap();
        assert_eq!((first.len(), next.clone()), (2, Some(json!("b"))));
        let (rest, next) = after_id(&all, next.as_ref().and_then(Value::as_str), 2).unwrap();
        assert_eq!((rest.len(), next), (1, None));
        assert!(after_id(&all, Some("zz"), 2).is_err());
    }
}
