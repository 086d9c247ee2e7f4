//! Aggregates and decisions leaving the aggregator.
//!
//! Each window leaves twice: as a serialized custom downstream event (ordered with the video, for
//! `auditsink`) and as an element message on the bus (for applications). Both carry a
//! `GstStructure` named [`METRICS_WINDOW`] with a few scalar fields for quick reading and the
//! whole window as JSON in `body` (the [`MetricsWindow`] type below), so any consumer — ours, a
//! Python script, a Zenoh client — decodes the same document.
//!
//! Scalar fields: `window-start`, `window-end` (RFC 3339 UTC strings), `partial` (bool: flushed
//! at EOS before the window's end), `opportunities-to-see`, `watchers` (u32), `body` (JSON), and
//! from the aggregator `pts` (u64 ns: the frame that closed the window).
//!
//! No field identifies anyone: no track ids, no boxes, no images. Attention events carry only
//! start, end and duration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Structure (and custom event) name of a metrics window.
pub const METRICS_WINDOW: &str = "veil-metrics-window";

/// Dwell bands, in seconds: `[0,5)`, `[5,15)`, `[15,30)`, `[30,60)`, `[60,∞)`.
pub const DWELL_BANDS: [&str; 5] = ["0-5s", "5-15s", "15-30s", "30-60s", "60s+"];

pub fn dwell_band(seconds: f64) -> usize {
    match seconds {
        s if s < 5.0 => 0,
        s if s < 15.0 => 1,
        s if s < 30.0 => 2,
        s if s < 60.0 => 3,
        _ => 4,
    }
}

/// One attention event: a person looking toward the camera/screen, with no identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionEvent {
    pub start: String,
    pub end: String,
    pub duration_s: f64,
}

/// Per-zone figures of a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneMetrics {
    /// Mean number of people in the zone over the window's frames.
    pub occupancy_mean: f64,
    pub occupancy_max: u32,
    /// Distinct people seen in the zone.
    pub visitors: u32,
}

/// Line crossings of a directed line: `forward` crosses from its right side to its left side
/// (looking from `from` to `to`, image coordinates with y down), `backward` the other way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineCrossings {
    pub forward: u32,
    pub backward: u32,
}

/// Visual inspection figures of a window (only when the aggregator inspects parts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InspectionCounts {
    /// Parts decided in the window.
    pub parts: u32,
    pub ok: u32,
    pub ng: u32,
    /// ok / parts; null when no part was decided.
    pub yield_rate: Option<f64>,
}

/// Demographic breakdown of one zone: attribute → value → count; `null` marks a suppressed cell
/// (fewer than k people, or suppressed to protect another cell).
pub type Breakdown = BTreeMap<String, BTreeMap<String, Option<u32>>>;

/// A closed (or, at EOS, partial) metrics window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsWindow {
    pub version: u32,
    pub window_start: String,
    pub window_end: String,
    pub partial: bool,
    /// Distinct person tracks seen in the window (Quividi's "opportunities to see").
    pub opportunities_to_see: u32,
    /// Of those, tracks that gave attention at least once in the window.
    pub watchers: u32,
    /// Dwell (first to last sight) of the tracks that ended in this window, by band.
    pub dwell_bands: BTreeMap<String, u32>,
    pub dwell_time_s: f64,
    pub attention_events: Vec<AttentionEvent>,
    pub attention_time_s: f64,
    /// Attention time / dwell time of the tracks that ended in this window (0 when none).
    pub attraction_ratio: f64,
    pub zones: BTreeMap<String, ZoneMetrics>,
    /// `"A->B"` → number of transitions from zone A to zone B.
    pub zone_flows: BTreeMap<String, u32>,
    pub lines: BTreeMap<String, LineCrossings>,
    /// Only with a classifier upstream and windows of at least 300 s.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub demographics: BTreeMap<String, Breakdown>,
    /// Only in inspection mode.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inspection: Option<InspectionCounts>,
}

impl MetricsWindow {
    pub const VERSION: u32 = 1;

    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(METRICS_WINDOW)
            .field("window-start", self.window_start.as_str())
            .field("window-end", self.window_end.as_str())
            .field("partial", self.partial)
            .field("opportunities-to-see", self.opportunities_to_see)
            .field("watchers", self.watchers)
            .field("body", serde_json::to_string(self).unwrap_or_default())
            .build()
    }

    /// Reads a window back from its structure (custom event or bus message).
    pub fn from_structure(s: &gst::StructureRef) -> Option<Self> {
        if s.name() != METRICS_WINDOW {
            return None;
        }
        serde_json::from_str(s.get::<&str>("body").ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_have_the_documented_edges() {
        let got: Vec<usize> = [0.0, 4.99, 5.0, 14.9, 15.0, 20.0, 30.0, 59.9, 60.0, 600.0]
            .iter()
            .map(|&s| dwell_band(s))
            .collect();
        assert_eq!(got, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn windows_round_trip_through_a_structure() {
        gst::init().unwrap();
        let mut w = MetricsWindow {
            version: 1,
            window_start: "2026-11-23T10:00:00Z".into(),
            opportunities_to_see: 3,
            ..Default::default()
        };
        w.zone_flows.insert("a->b".into(), 1);
        let s = w.to_structure();
        assert_eq!(s.get::<u32>("opportunities-to-see").unwrap(), 3);
        assert_eq!(MetricsWindow::from_structure(&s), Some(w));
    }
}
