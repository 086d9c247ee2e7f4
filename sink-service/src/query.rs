// SPDX-License-Identifier: MIT OR Apache-2.0
//! History queries: a Zenoh `get` on `veil/<tenant>/<site>/<device>/<stream>/<kind>` (wildcards
//! allowed) with parameters `from`, `to` (RFC 3339 or ns since the epoch; capture time, `to`
//! exclusive) and `limit`, answered with the stored valid records in the same format, one reply
//! per record, per series in time order.

use zenoh::key_expr::KeyExpr;

use crate::store::{Store, is_valid, key_seq, series_prefix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: u64,
    pub to: u64,
    pub limit: usize,
}

/// RFC 3339 UTC, or nanoseconds since the epoch.
pub fn parse_time(text: &str) -> Option<u64> {
    text.parse::<u64>()
        .ok()
        .or_else(|| veil_wire::record::parse_time(text))
}

/// Reads `from`, `to`, `limit` from selector parameters (`from=…;to=…;limit=…`).
pub fn parse_range(parameters: &str) -> Result<Range, String> {
    let mut range = Range {
        from: 0,
        to: u64::MAX,
        limit: usize::MAX,
    };
    for pair in parameters.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "from" => range.from = parse_time(v).ok_or(format!("from={v:?} is not a time"))?,
            "to" => range.to = parse_time(v).ok_or(format!("to={v:?} is not a time"))?,
            "limit" => {
                range.limit = v
                    .parse()
                    .map_err(|_| format!("limit={v:?} is not a number"))?
            }
            _ => {}
        }
    }
    Ok(range)
}

/// Which series a reader may read: `(kind, site, device, stream)` → allowed.
pub type Readable<'a> = &'a dyn Fn(veil_wire::Kind, &str, &str, &str) -> bool;

/// The stored records matching `key_expr` in `range`, of tenant `only` (all tenants: `None`)
/// and of the series `readable` allows (an API key's scopes and stations): (their key
/// expression, bytes).
pub fn history(
    store: &Store,
    key_expr: &KeyExpr<'_>,
    range: Range,
    only: Option<&str>,
    readable: Readable<'_>,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    // A query over Zenoh sees only its key's tenant: another tenant's key space is as empty as
    // an absent one. (`None`: the offline `export`, run by whoever holds the store's keys.)
    for tenant in store
        .tenants()
        .into_iter()
        .filter(|t| only.is_none_or(|o| o == t))
    {
        let tenant_ke =
            KeyExpr::try_from(format!("veil/{tenant}/**")).map_err(|e| anyhow::anyhow!("{e}"))?;
        if !key_expr.intersects(&tenant_ke) {
            continue;
        }
        let records = store.tree("records", &tenant)?;
        // The series of this tenant: distinct site/device/stream/kind prefixes.
        let mut series = Vec::new();
        for (device, stream, state) in store.units(&tenant)? {
            let unit = store.unit_of(&tenant, &state);
            for kind in veil_wire::Kind::ALL
                .into_iter()
                .filter(|k| readable(*k, &state.site, &device, &stream))
            {
                let name = format!(
                    "veil/{tenant}/{}/{device}/{stream}/{}",
                    state.site,
                    kind.as_str()
                );
                series.push((
                    series_prefix(&unit, kind.as_str()),
                    kind,
                    state.clone(),
                    name,
                ));
            }
        }
        for (prefix, kind_of_series, state, name) in series {
            let Ok(candidate) = KeyExpr::try_from(name.as_str()) else {
                continue;
            };
            if !key_expr.intersects(&candidate) {
                continue;
            }
            let mut start = prefix.clone();
            start.extend_from_slice(&range.from.to_be_bytes());
            let mut end = prefix.clone();
            end.extend_from_slice(&range.to.to_be_bytes());
            for item in records.range(start..end) {
                if out.len() >= range.limit {
                    return Ok(out);
                }
                let (key, _) = item?;
                // Staged records (not yet vouched for by a trusted checkpoint) are not served.
                if !is_valid(kind_of_series, key_seq(&key), Some(&state)) {
                    continue;
                }
                if let Some(bytes) = store.get(&tenant, "records", &key)? {
                    out.push((name.clone(), bytes));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_rfc3339_or_nanoseconds() {
        let r = parse_range("from=2026-11-23T10:00:00Z;to=1795431600000000000;limit=5").unwrap();
        assert_eq!(
            r,
            Range {
                from: 1_795_428_000_000_000_000,
                to: 1_795_431_600_000_000_000,
                limit: 5
            }
        );
        assert!(parse_range("from=yesterday").is_err());
        assert_eq!(parse_range("").unwrap().to, u64::MAX);
    }
}
