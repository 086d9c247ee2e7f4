// SPDX-License-Identifier: MIT OR Apache-2.0
//! Roll-ups of metrics windows, as audience dashboards show them: per hour (a time series),
//! per day, per hour of day, per day of week, per (day of week, hour of day) cell of a weekly
//! heatmap, per zone, per zone-to-zone flow and per counting line, over a date range. Windows are placed by their `window_start`,
//! shifted by the caller's UTC offset (stores open and close in local time).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// `2026-11-23T10`: one bucket per local hour.
    Hour,
    HourOfDay,
    DayOfWeek,
    /// `monday-10`: the cells of a day-of-week × hour-of-day heatmap.
    WeekdayHour,
    Day,
    Zone,
    /// `entrance->shelf`: transitions between zones.
    Flow,
    /// A counting line's crossings each way.
    Line,
}

impl Dimension {
    pub fn parse(text: &str) -> Option<Dimension> {
        match text {
            "hour" => Some(Dimension::Hour),
            "hour-of-day" => Some(Dimension::HourOfDay),
            "day-of-week" => Some(Dimension::DayOfWeek),
            "weekday-hour" => Some(Dimension::WeekdayHour),
            "day" => Some(Dimension::Day),
            "zone" => Some(Dimension::Zone),
            "flow" => Some(Dimension::Flow),
            "line" => Some(Dimension::Line),
            _ => None,
        }
    }
}

pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Audience figures added up over the windows of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    pub key: String,
    pub windows: u64,
    pub opportunities_to_see: u64,
    pub watchers: u64,
    pub attention_time_s: f64,
    pub dwell_time_s: f64,
    pub dwell_bands: BTreeMap<String, u64>,
}

/// Zone figures over the windows: visitors added up, occupancy averaged over the windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ZoneBucket {
    pub key: String,
    pub windows: u64,
    pub visitors: u64,
    pub occupancy_mean: f64,
    pub occupancy_max: u64,
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian; H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The bucket of a window starting at `start_ns` (UTC) for a local offset of `offset_min`.
pub fn bucket_of(dimension: Dimension, start_ns: u64, offset_min: i32) -> String {
    let local_s = (start_ns / 1_000_000_000) as i64 + i64::from(offset_min) * 60;
    let days = local_s.div_euclid(86_400);
    match dimension {
        Dimension::HourOfDay => format!("{:02}", local_s.rem_euclid(86_400) / 3600),
        // 1970-01-01 was a Thursday (index 3 from Monday).
        Dimension::DayOfWeek => WEEKDAYS[(days + 3).rem_euclid(7) as usize].to_owned(),
        Dimension::Day => {
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}")
        }
        Dimension::Hour => {
            let (y, m, d) = civil_from_days(days);
            let hour = local_s.rem_euclid(86_400) / 3600;
            format!("{y:04}-{m:02}-{d:02}T{hour:02}")
        }
        Dimension::WeekdayHour => format!(
            "{}-{:02}",
            WEEKDAYS[(days + 3).rem_euclid(7) as usize],
            local_s.rem_euclid(86_400) / 3600
        ),
        Dimension::Zone | Dimension::Flow | Dimension::Line => String::new(),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Rolls up metrics window bodies along a time dimension. Buckets come in their natural order
/// (hours 00–23, Monday–Sunday, days ascending); only buckets with windows are listed.
pub fn by_time(dimension: Dimension, windows: &[Value], offset_min: i32) -> Vec<Bucket> {
    let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
    for w in windows {
        let Some(start) = w["window_start"]
            .as_str()
            .and_then(veil_wire::record::parse_time)
        else {
            continue;
        };
        let key = bucket_of(dimension, start, offset_min);
        let b = buckets.entry(key.clone()).or_insert_with(|| Bucket {
            key,
            ..Default::default()
        });
        b.windows += 1;
        b.opportunities_to_see += u(&w["opportunities_to_see"]);
        b.watchers += u(&w["watchers"]);
        b.attention_time_s += w["attention_time_s"].as_f64().unwrap_or(0.0);
        b.dwell_time_s += w["dwell_time_s"].as_f64().unwrap_or(0.0);
        for (band, n) in w["dwell_bands"].as_object().into_iter().flatten() {
            *b.dwell_bands.entry(band.clone()).or_default() += u(n);
        }
    }
    let mut out: Vec<Bucket> = buckets.into_values().collect();
    if matches!(dimension, Dimension::DayOfWeek | Dimension::WeekdayHour) {
        // Monday first; within a day, hours ascending (the keys' own order).
        out.sort_by_cached_key(|b| {
            let day = b.key.split('-').next().unwrap_or("");
            (WEEKDAYS.iter().position(|d| *d == day), b.key.clone())
        });
    }
    out
}

/// Rolls up the zones of metrics window bodies.
pub fn by_zone(windows: &[Value]) -> Vec<ZoneBucket> {
    let mut zones: BTreeMap<String, ZoneBucket> = BTreeMap::new();
    for w in windows {
        for (name, z) in w["zones"].as_object().into_iter().flatten() {
            let b = zones.entry(name.clone()).or_insert_with(|| ZoneBucket {
                key: name.clone(),
                ..Default::default()
            });
            b.windows += 1;
            b.visitors += u(&z["visitors"]);
            b.occupancy_mean += z["occupancy_mean"].as_f64().unwrap_or(0.0);
            b.occupancy_max = b.occupancy_max.max(u(&z["occupancy_max"]));
        }
    }
    zones
        .into_values()
        .map(|mut b| {
            b.occupancy_mean /= b.windows.max(1) as f64;
            b
        })
        .collect()
}

/// Transitions between zones (`"A->B"`), added up over the windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowBucket {
    pub key: String,
    pub windows: u64,
    pub transitions: u64,
}

/// A counting line's crossings, added up over the windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LineBucket {
    pub key: String,
    pub windows: u64,
    pub forward: u64,
    pub backward: u64,
}

/// Rolls up the zone-to-zone flows of metrics window bodies.
pub fn by_flow(windows: &[Value]) -> Vec<FlowBucket> {
    let mut flows: BTreeMap<String, FlowBucket> = BTreeMap::new();
    for w in windows {
        for (name, n) in w["zone_flows"].as_object().into_iter().flatten() {
            let b = flows.entry(name.clone()).or_insert_with(|| FlowBucket {
                key: name.clone(),
                ..Default::default()
            });
            b.windows += 1;
            b.transitions += u(n);
        }
    }
    flows.into_values().collect()
}

/// Rolls up the counting lines of metrics window bodies.
pub fn by_line(windows: &[Value]) -> Vec<LineBucket> {
    let mut lines: BTreeMap<String, LineBucket> = BTreeMap::new();
    for w in windows {
        for (name, l) in w["lines"].as_object().into_iter().flatten() {
            let b = lines.entry(name.clone()).or_insert_with(|| LineBucket {
                key: name.clone(),
                ..Default::default()
            });
            b.windows += 1;
            b.forward += u(&l["forward"]);
            b.backward += u(&l["backward"]);
        }
    }
    lines.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calendar_arithmetic() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_780), (2026, 11, 23));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2026-11-23T10:00:00Z is a Monday, at 10 UTC, 11 in UTC+1, Sunday 23h in UTC-11.
        let t = 1_795_428_000_000_000_000;
        assert_eq!(bucket_of(Dimension::DayOfWeek, t, 0), "monday");
        assert_eq!(bucket_of(Dimension::HourOfDay, t, 60), "11");
        assert_eq!(bucket_of(Dimension::DayOfWeek, t, -11 * 60), "sunday");
        assert_eq!(bucket_of(Dimension::Day, t, -11 * 60), "2026-11-22");
        assert_eq!(bucket_of(Dimension::Hour, t, -11 * 60), "2026-11-22T23");
        assert_eq!(bucket_of(Dimension::WeekdayHour, t, 60), "monday-11");
        for d in [
            "hour",
            "hour-of-day",
            "day-of-week",
            "weekday-hour",
            "day",
            "zone",
            "flow",
            "line",
        ] {
            assert!(Dimension::parse(d).is_some(), "{d}");
        }
    }

    #[test]
    fn windows_add_up_per_bucket() {
        let short = veil_wire::event::DwellBand::UpTo5s.label();
        let w = |start: &str, ots: u64, zone_visitors: u64| {
            json!({"window_start": start, "opportunities_to_see": ots, "watchers": 1,
                   "attention_time_s": 1.5, "dwell_bands": {short: 1},
                   "zones": {"shelf": {"visitors": zone_visitors, "occupancy_mean": 1.0, "occupancy_max": 2}}})
        };
        let windows = [
            w("2026-11-23T10:00:00Z", 3, 1),
            w("2026-11-23T10:30:00Z", 4, 2),
            w("2026-11-24T10:00:00Z", 5, 0),
            w("2026-11-29T09:00:00Z", 1, 0),
            json!({"window_start": "not a time", "opportunities_to_see": 100}),
        ];
        let hours = by_time(Dimension::HourOfDay, &windows, 0);
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[0].key.as_str(), hours[0].windows), ("09", 1));
        assert_eq!(
            (hours[1].key.as_str(), hours[1].opportunities_to_see),
            ("10", 12)
        );
        assert_eq!(hours[1].dwell_bands[short], 3);
        let days: Vec<String> = by_time(Dimension::DayOfWeek, &windows, 0)
            .into_iter()
            .map(|b| b.key)
            .collect();
        assert_eq!(days, ["monday", "tuesday", "sunday"]);
        let cells: Vec<(String, u64)> = by_time(Dimension::WeekdayHour, &windows, 0)
            .into_iter()
            .map(|b| (b.key, b.opportunities_to_see))
            .collect();
        assert_eq!(
            cells,
            [
                ("monday-10".to_owned(), 7),
                ("tuesday-10".to_owned(), 5),
                ("sunday-09".to_owned(), 1)
            ]
        );
        let series: Vec<String> = by_time(Dimension::Hour, &windows, 0)
            .into_iter()
            .map(|b| b.key)
            .collect();
        assert_eq!(series, ["2026-11-23T10", "2026-11-24T10", "2026-11-29T09"]);
        let flows = by_flow(&[
            json!({"zone_flows": {"entrance->shelf": 2}}),
            json!({"zone_flows": {"entrance->shelf": 1, "shelf->entrance": 4}}),
        ]);
        assert_eq!(
            flows
                .iter()
                .map(|f| (f.key.as_str(), f.transitions))
                .collect::<Vec<_>>(),
            [("entrance->shelf", 3), ("shelf->entrance", 4)]
        );
        let lines = by_line(&[
            json!({"lines": {"door": {"forward": 2, "backward": 1}}}),
            json!({"lines": {"door": {"forward": 3, "backward": 0}}}),
        ]);
        assert_eq!(
            (lines[0].forward, lines[0].backward, lines[0].windows),
            (5, 1, 2)
        );
        let zones = by_zone(&windows);
        assert_eq!(zones[0].visitors, 3);
        assert_eq!(zones[0].windows, 4);
        assert_eq!(zones[0].occupancy_max, 2);
    }
}
