// SPDX-License-Identifier: MIT OR Apache-2.0
//! The event contract: every event the `aggregator` emits, its name, its body and the record it
//! becomes. Defined once, here, without GStreamer: the aggregator builds these types, `auditsink`
//! maps them to record kinds by type ([`Event::record_kind`]), the sink service reads record
//! bodies back into them, and `schema/record.schema.json` is tested against them.
//!
//! | event | name | record kind | capture time |
//! |---|---|---|---|
//! | [`MetricsWindow`] | `veil-metrics-window` | `metrics` | the window's end |
//! | [`StepEvent`] | `veil-step` | `event` | the step's end |
//! | [`ComplianceCycle`] | `veil-compliance` | `compliance` | the cycle's end |
//! | [`InspectionRecord`] | `veil-inspection` | `inspection` | the part's frame |
//! | [`ImageRecord`] | `veil-image` | `image` | the part's frame |
//! | [`TimeDiscontinuity`] | `veil-time-discontinuity` | `integrity` | the first frame after it |
//!
//! In a pipeline each event travels as a `GstStructure` of its name with its body as JSON in a
//! `body` field (plus a few scalar fields for bus readers; `veil_meta::events` does that side).
//! Device- and service-side integrity events are [`IntegrityEvent`]s. Times are
//! [`crate::time::format_time`] strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::Kind;

/// What the aggregator emits, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Window(MetricsWindow),
    Step(StepEvent),
    Compliance(ComplianceCycle),
    Inspection(InspectionRecord),
    Image(ImageRecord),
    /// A break in the stream's time; stored as an `integrity` record
    /// ([`IntegrityEvent::TimeDiscontinuity`]).
    Discontinuity(TimeDiscontinuity),
}

/// Which event, without its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Window,
    Step,
    Compliance,
    Inspection,
    Image,
    Discontinuity,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Window,
        EventKind::Step,
        EventKind::Compliance,
        EventKind::Inspection,
        EventKind::Image,
        EventKind::Discontinuity,
    ];

    /// The structure / custom event name: the only place these names are spelled.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Window => "veil-metrics-window",
            EventKind::Step => "veil-step",
            EventKind::Compliance => "veil-compliance",
            EventKind::Inspection => "veil-inspection",
            EventKind::Image => "veil-image",
            EventKind::Discontinuity => "veil-time-discontinuity",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The record kind the event is stored as.
    pub fn record_kind(self) -> Kind {
        match self {
            EventKind::Window => Kind::Metrics,
            EventKind::Step => Kind::Event,
            EventKind::Compliance => Kind::Compliance,
            EventKind::Inspection => Kind::Inspection,
            EventKind::Image => Kind::Image,
            EventKind::Discontinuity => Kind::Integrity,
        }
    }
}

/// Prefix of every Veil event and bus message name.
pub const NAME_PREFIX: &str = "veil-";

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("'{0}' is not a Veil event")]
    Unknown(String),
    #[error("the body of a {name} is not readable: {reason}")]
    Body { name: &'static str, reason: String },
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Window(_) => EventKind::Window,
            Event::Step(_) => EventKind::Step,
            Event::Compliance(_) => EventKind::Compliance,
            Event::Inspection(_) => EventKind::Inspection,
            Event::Image(_) => EventKind::Image,
            Event::Discontinuity(_) => EventKind::Discontinuity,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    pub fn record_kind(&self) -> Kind {
        self.kind().record_kind()
    }

    /// The capture time of the record it becomes (RFC 3339).
    pub fn capture_time(&self) -> &str {
        match self {
            Event::Window(w) => &w.window_end,
            Event::Step(s) => &s.end,
            Event::Compliance(c) => &c.end,
            Event::Inspection(i) => &i.time,
            Event::Image(i) => &i.time,
            Event::Discontinuity(d) => &d.first_after,
        }
    }

    /// The event's body as JSON, as it travels in the structure's `body` field.
    pub fn body(&self) -> serde_json::Value {
        let value = match self {
            Event::Window(w) => serde_json::to_value(w),
            Event::Step(s) => serde_json::to_value(s),
            Event::Compliance(c) => serde_json::to_value(c),
            Event::Inspection(i) => serde_json::to_value(i),
            Event::Image(i) => serde_json::to_value(i),
            Event::Discontinuity(d) => serde_json::to_value(d),
        };
        // Plain data: serializing these types cannot fail.
        value.unwrap_or_default()
    }

    /// The body of the record the event becomes. Steps are `event` records, which name their
    /// type: `{"type": "veil-step", "fields": <body>}`; discontinuities are `integrity` records
    /// of type `time-discontinuity`; the others are stored as they are.
    pub fn record_body(&self) -> serde_json::Value {
        match self {
            Event::Step(_) => serde_json::json!({"type": self.name(), "fields": self.body()}),
            Event::Discontinuity(d) => IntegrityEvent::TimeDiscontinuity(d.clone()).body(),
            _ => self.body(),
        }
    }

    /// Reads an event from its name and JSON body.
    pub fn from_body(name: &str, body: &str) -> Result<Event, EventError> {
        let kind = EventKind::from_name(name).ok_or_else(|| EventError::Unknown(name.into()))?;
        let err = |e: serde_json::Error| EventError::Body {
            name: kind.name(),
            reason: e.to_string(),
        };
        Ok(match kind {
            EventKind::Window => Event::Window(serde_json::from_str(body).map_err(err)?),
            EventKind::Step => Event::Step(serde_json::from_str(body).map_err(err)?),
            EventKind::Compliance => Event::Compliance(serde_json::from_str(body).map_err(err)?),
            EventKind::Inspection => Event::Inspection(serde_json::from_str(body).map_err(err)?),
            EventKind::Image => Event::Image(serde_json::from_str(body).map_err(err)?),
            EventKind::Discontinuity => {
                Event::Discontinuity(serde_json::from_str(body).map_err(err)?)
            }
        })
    }
}

/// Dwell bands: how long a person stayed, first to last sight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DwellBand {
    /// `[0, 5)` s
    UpTo5s,
    /// `[5, 15)` s
    UpTo15s,
    /// `[15, 30)` s
    UpTo30s,
    /// `[30, 60)` s
    UpTo60s,
    /// `[60, ∞)` s
    Over60s,
}

impl DwellBand {
    pub const ALL: [DwellBand; 5] = [
        DwellBand::UpTo5s,
        DwellBand::UpTo15s,
        DwellBand::UpTo30s,
        DwellBand::UpTo60s,
        DwellBand::Over60s,
    ];

    /// The band's key in a window's `dwell_bands`.
    pub fn label(self) -> &'static str {
        match self {
            DwellBand::UpTo5s => "0-5s",
            DwellBand::UpTo15s => "5-15s",
            DwellBand::UpTo30s => "15-30s",
            DwellBand::UpTo60s => "30-60s",
            DwellBand::Over60s => "60s+",
        }
    }

    pub fn of_seconds(seconds: f64) -> DwellBand {
        match seconds {
            s if s < 5.0 => DwellBand::UpTo5s,
            s if s < 15.0 => DwellBand::UpTo15s,
            s if s < 30.0 => DwellBand::UpTo30s,
            s if s < 60.0 => DwellBand::UpTo60s,
            _ => DwellBand::Over60s,
        }
    }
}

/// One attention event: a person looking toward the camera or screen, with no identity.
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

/// Visual inspection figures of a window (inspection mode).
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

/// A closed (or, at EOS, partial) window of anonymous metrics. Missing members read as their
/// defaults, so partial bodies (older versions, synthetic ones) are read too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsWindow {
    pub version: u32,
    pub window_start: String,
    pub window_end: String,
    pub partial: bool,
    /// Distinct person tracks seen in the window (Quividi's "opportunities to see").
    pub opportunities_to_see: u32,
    /// Of those, tracks that gave attention at least once in the window.
    pub watchers: u32,
    /// Dwell of the tracks that ended in this window, by [`DwellBand::label`].
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
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub demographics: BTreeMap<String, Breakdown>,
    /// Only in inspection mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection: Option<InspectionCounts>,
    /// Breaks in the stream's time that overlap the window (an outage, a timestamp reset): its
    /// counts cover only the time frames were analysed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discontinuities: Vec<TimeDiscontinuity>,
}

impl MetricsWindow {
    pub const VERSION: u32 = 1;

    /// The count of one dwell band (0 when absent).
    pub fn dwell(&self, band: DwellBand) -> u32 {
        self.dwell_bands.get(band.label()).copied().unwrap_or(0)
    }
}

/// What broke a stream's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscontinuityCause {
    /// No frame for longer than the gap setting, and the clock agrees (an outage, a stalled
    /// source, a recording with a hole).
    Stall,
    /// The timestamps started again from (near) zero: a source or camera that restarted.
    TimestampReset,
    /// The timestamps jumped ahead of the clock.
    ForwardJump,
    /// The timestamps stepped back, not to zero.
    BackwardStep,
}

impl DiscontinuityCause {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscontinuityCause::Stall => "stall",
            DiscontinuityCause::TimestampReset => "timestamp-reset",
            DiscontinuityCause::ForwardJump => "forward-jump",
            DiscontinuityCause::BackwardStep => "backward-step",
        }
    }
}

/// A break in a stream's time: between the last frame before it and the first after it nothing
/// was analysed. Tracks end at it; no dwell spans it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeDiscontinuity {
    pub cause: DiscontinuityCause,
    /// Capture time of the last frame before the break.
    pub last_before: String,
    /// Capture time of the first frame after it, on the corrected timeline (never before
    /// `last_before`).
    pub first_after: String,
    /// `first_after − last_before`, seconds.
    pub gap_s: f64,
    /// How far the stream's own timestamps moved between those two frames, seconds (negative:
    /// back).
    pub timestamp_step_s: f64,
}

/// One occurrence of an operator's step (action compliance): labels and times only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEvent {
    pub step: String,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
}

/// How a compliance cycle went: `in_order`, or the first of the flags that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleStatus {
    InOrder,
    Timeout,
    Missing,
    OutOfOrder,
    Extra,
}

impl CycleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CycleStatus::InOrder => "in_order",
            CycleStatus::Timeout => "timeout",
            CycleStatus::Missing => "missing",
            CycleStatus::OutOfOrder => "out_of_order",
            CycleStatus::Extra => "extra",
        }
    }
}

/// A step of a cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleStep {
    pub step: String,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
}

/// Two expected steps seen the other way round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    pub before: String,
    pub after: String,
}

/// A closed cycle of the expected step sequence (`compliance` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceCycle {
    pub version: u32,
    pub cycle: u64,
    pub status: CycleStatus,
    pub start: String,
    pub end: String,
    pub cycle_time_s: f64,
    pub steps: Vec<CycleStep>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub out_of_order: Vec<Swap>,
    pub timed_out: bool,
}

/// A part's OK/NG decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "NG")]
    Ng,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Ok => "OK",
            Decision::Ng => "NG",
        }
    }
}

/// Why a part is NG: the first rule that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub rule: String,
    pub label: String,
    pub confidence: f64,
    pub min_confidence: f64,
}

/// Which image a decision kept (the `image` record with this digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub sha256: String,
    pub bytes: u64,
}

/// A part's decision (`inspection` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionRecord {
    pub version: u32,
    pub part: u64,
    pub decision: Decision,
    pub reason: Option<Reason>,
    pub time: String,
    pub image: Option<ImageRef>,
}

/// A kept frame of an inspected part (`image` record), only under an image retention setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub version: u32,
    pub part: u64,
    pub decision: Decision,
    pub time: String,
    /// `jpeg`.
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the JPEG bytes.
    pub sha256: String,
    /// The JPEG, base64 (standard alphabet, padded).
    pub data: String,
}

impl ImageRecord {
    pub fn reference(&self) -> ImageRef {
        ImageRef {
            sha256: self.sha256.clone(),
            bytes: self.bytes,
        }
    }
}

/// Something about the record stream itself (`integrity` record), from the device or the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum IntegrityEvent {
    /// The device's spool was full: records were dropped (named by their capture times).
    SpoolOverflow {
        dropped: u64,
        first_capture_time: String,
        last_capture_time: String,
        max_pending: u64,
    },
    /// The names in a record disagree with its key expression.
    NamesDisagree { key_expr: String, reason: String },
    /// Two different records with one sequence number.
    Conflict {
        device: String,
        stream: String,
        seq: u64,
        reason: String,
    },
    /// A record does not continue its chain.
    Chain {
        device: String,
        stream: String,
        seq: u64,
        reason: String,
    },
    /// A checkpoint signed by a key the store does not trust for that device.
    UntrustedKey {
        device: String,
        stream: String,
        seq: u64,
        reason: String,
    },
    /// Records missing that the device did not send again in time.
    Gap {
        device: String,
        stream: String,
        seq: u64,
        reason: String,
    },
    /// The device's stream time broke (outage, reset, jump); from the aggregator.
    TimeDiscontinuity(TimeDiscontinuity),
}

impl IntegrityEvent {
    /// The body of the `integrity` record.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The event's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            IntegrityEvent::SpoolOverflow { .. } => "spool-overflow",
            IntegrityEvent::NamesDisagree { .. } => "names-disagree",
            IntegrityEvent::Conflict { .. } => "conflict",
            IntegrityEvent::Chain { .. } => "chain",
            IntegrityEvent::UntrustedKey { .. } => "untrusted-key",
            IntegrityEvent::Gap { .. } => "gap",
            IntegrityEvent::TimeDiscontinuity(_) => "time-discontinuity",
        }
    }
}

#[cfg(test)]
pub(crate) mod samples {
    //! One fully populated event of each type (every optional member present), for the schema
    //! test and the round trips.
    use super::*;

    pub fn window() -> MetricsWindow {
        let mut w = MetricsWindow {
            version: MetricsWindow::VERSION,
            window_start: "2026-11-23T10:00:00.000000000Z".into(),
            window_end: "2026-11-23T10:01:00.000000000Z".into(),
            opportunities_to_see: 3,
            watchers: 1,
            dwell_time_s: 42.0,
            attention_time_s: 1.5,
            attraction_ratio: 0.04,
            inspection: Some(InspectionCounts {
                parts: 2,
                ok: 1,
                ng: 1,
                yield_rate: Some(0.5),
            }),
            ..Default::default()
        };
        for b in DwellBand::ALL {
            w.dwell_bands.insert(b.label().into(), 1);
        }
        w.attention_events.push(AttentionEvent {
            start: w.window_start.clone(),
            end: w.window_start.clone(),
            duration_s: 1.5,
        });
        w.zones.insert("lawn".into(), ZoneMetrics::default());
        w.zone_flows.insert("lawn->road".into(), 1);
        w.lines.insert("door".into(), LineCrossings::default());
        let mut cells = BTreeMap::new();
        cells.insert("female".into(), Some(5));
        cells.insert("male".into(), None);
        let mut breakdown = Breakdown::new();
        breakdown.insert("gender".into(), cells);
        w.demographics.insert("lawn".into(), breakdown);
        w.discontinuities.push(discontinuity());
        w
    }

    pub fn discontinuity() -> TimeDiscontinuity {
        TimeDiscontinuity {
            cause: DiscontinuityCause::TimestampReset,
            last_before: "2026-11-23T10:00:20.000000000Z".into(),
            first_after: "2026-11-23T10:00:32.500000000Z".into(),
            gap_s: 12.5,
            timestamp_step_s: -20.0,
        }
    }

    pub fn all() -> Vec<Event> {
        let t = "2026-11-23T10:00:05.000000000Z".to_owned();
        let image = ImageRecord {
            version: 1,
            part: 7,
            decision: Decision::Ng,
            time: t.clone(),
            format: "jpeg".into(),
            width: 64,
            height: 48,
            bytes: 3,
            sha256: "ab".repeat(32),
            data: "AAAA".into(),
        };
        vec![
            Event::Window(window()),
            Event::Step(StepEvent {
                step: "pick".into(),
                start: t.clone(),
                end: t.clone(),
                duration_s: 0.5,
            }),
            Event::Compliance(ComplianceCycle {
                version: 1,
                cycle: 1,
                status: CycleStatus::OutOfOrder,
                start: t.clone(),
                end: t.clone(),
                cycle_time_s: 3.0,
                steps: vec![CycleStep {
                    step: "pick".into(),
                    start: t.clone(),
                    end: t.clone(),
                    duration_s: 0.5,
                }],
                missing: vec!["place".into()],
                extra: vec!["wave".into()],
                out_of_order: vec![Swap {
                    before: "a".into(),
                    after: "b".into(),
                }],
                timed_out: false,
            }),
            Event::Inspection(InspectionRecord {
                version: 1,
                part: 7,
                decision: Decision::Ng,
                reason: Some(Reason {
                    rule: "dark spot".into(),
                    label: "ng".into(),
                    confidence: 0.9,
                    min_confidence: 0.5,
                }),
                time: t.clone(),
                image: Some(image.reference()),
            }),
            Event::Image(image),
            Event::Discontinuity(discontinuity()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_kinds_and_bodies_round_trip() {
        for event in samples::all() {
            let body = event.body().to_string();
            let back = Event::from_body(event.name(), &body).unwrap();
            assert_eq!(back, event);
            assert_eq!(EventKind::from_name(event.name()), Some(event.kind()));
            assert!(event.name().starts_with(NAME_PREFIX));
        }
        assert!(matches!(
            Event::from_body("veil-nothing", "{}"),
            Err(EventError::Unknown(_))
        ));
        assert!(matches!(
            Event::from_body("veil-compliance", "{\"cycle\": \"x\"}"),
            Err(EventError::Body { .. })
        ));
    }

    #[test]
    fn steps_are_event_records_naming_their_type() {
        let step = samples::all().remove(1);
        assert_eq!(step.record_kind(), Kind::Event);
        let body = step.record_body();
        assert_eq!(body["type"], "veil-step");
        assert_eq!(body["fields"]["step"], "pick");
        let window = samples::all().remove(0);
        assert_eq!(window.record_kind(), Kind::Metrics);
        assert_eq!(window.record_body(), window.body());
        assert_eq!(window.capture_time(), "2026-11-23T10:01:00.000000000Z");
    }

    #[test]
    fn bands_have_the_documented_edges() {
        let got: Vec<DwellBand> = [0.0, 4.99, 5.0, 14.9, 15.0, 20.0, 30.0, 59.9, 60.0, 600.0]
            .iter()
            .map(|&s| DwellBand::of_seconds(s))
            .collect();
        use DwellBand::*;
        assert_eq!(
            got,
            vec![
                UpTo5s, UpTo5s, UpTo15s, UpTo15s, UpTo30s, UpTo30s, UpTo60s, UpTo60s, Over60s,
                Over60s
            ]
        );
        assert_eq!(
            DwellBand::ALL.map(DwellBand::label),
            ["0-5s", "5-15s", "15-30s", "30-60s", "60s+"]
        );
    }

    #[test]
    fn partial_window_bodies_are_read() {
        let w: MetricsWindow =
            serde_json::from_str(r#"{"version":1,"window_start":"x","opportunities_to_see":4}"#)
                .unwrap();
        assert_eq!(w.opportunities_to_see, 4);
        assert_eq!(w.dwell(DwellBand::Over60s), 0);
    }

    #[test]
    fn integrity_events_carry_their_type() {
        let e = IntegrityEvent::Gap {
            device: "d".into(),
            stream: "s".into(),
            seq: 4,
            reason: "records 4..6 missing".into(),
        };
        let body = e.body();
        assert_eq!(body["type"], e.type_name());
        assert_eq!(body["seq"], 4);
        let back: IntegrityEvent = serde_json::from_value(body).unwrap();
        assert_eq!(back, e);
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    fn schema() -> serde_json::Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schema/record.schema.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn strings(v: &serde_json::Value) -> Vec<String> {
        let mut s: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        s.sort();
        s
    }

    /// Each body in schema/record.schema.json names exactly the members the type writes, and
    /// the record kind it belongs to says so.
    #[test]
    fn the_published_schema_describes_every_event_body() {
        let schema = schema();
        let defs = &schema["$defs"];
        for event in samples::all() {
            let def_name = match event.kind() {
                EventKind::Window => "metrics",
                EventKind::Step => "step",
                EventKind::Compliance => "compliance",
                EventKind::Inspection => "inspection",
                EventKind::Image => "image",
                // An integrity record of its own type: checked with the others below.
                EventKind::Discontinuity => continue,
            };
            let def = &defs[def_name];
            let body = event.record_body();
            assert_eq!(keys(&body), keys(&def["properties"]), "{def_name}");
            for r in strings(&def["required"]) {
                assert!(body.get(&r).is_some(), "{def_name}: required {r}");
            }
            // The kind's body is tied to this definition.
            let tied = schema["allOf"].as_array().unwrap().iter().any(|rule| {
                rule["if"]["properties"]["kind"]["const"] == event.record_kind().as_str()
                    && rule["then"]["properties"]["body"]["$ref"]
                        == format!("#/$defs/{def_name}").as_str()
            });
            assert!(
                tied,
                "{def_name} is not the body of kind {:?}",
                event.record_kind()
            );
        }
        let statuses: Vec<String> = [
            CycleStatus::InOrder,
            CycleStatus::Timeout,
            CycleStatus::Missing,
            CycleStatus::OutOfOrder,
            CycleStatus::Extra,
        ]
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(
            strings(&defs["compliance"]["properties"]["status"]["enum"]),
            sorted
        );
        let causes = [
            DiscontinuityCause::Stall,
            DiscontinuityCause::TimestampReset,
            DiscontinuityCause::ForwardJump,
            DiscontinuityCause::BackwardStep,
        ];
        for c in causes {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        let mut names: Vec<String> = causes.iter().map(|c| c.as_str().to_owned()).collect();
        names.sort();
        assert_eq!(
            strings(&defs["discontinuity"]["properties"]["cause"]["enum"]),
            names
        );
        let mut bands: Vec<String> = DwellBand::ALL.iter().map(|b| b.label().into()).collect();
        bands.sort();
        assert_eq!(
            strings(&defs["metrics"]["properties"]["dwell_bands"]["propertyNames"]["enum"]),
            bands
        );
        assert_eq!(
            strings(&defs["inspection"]["properties"]["decision"]["enum"]),
            vec!["NG", "OK"]
        );
    }

    #[test]
    fn the_schema_lists_every_integrity_event() {
        let schema = schema();
        let mut in_schema: Vec<String> = schema["$defs"]["integrity"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v["properties"]["type"]["const"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        in_schema.sort();
        let examples = [
            IntegrityEvent::SpoolOverflow {
                dropped: 1,
                first_capture_time: "t".into(),
                last_capture_time: "t".into(),
                max_pending: 1,
            },
            IntegrityEvent::NamesDisagree {
                key_expr: "k".into(),
                reason: "r".into(),
            },
            IntegrityEvent::Conflict {
                device: "d".into(),
                stream: "s".into(),
                seq: 1,
                reason: "r".into(),
            },
            IntegrityEvent::Chain {
                device: "d".into(),
                stream: "s".into(),
                seq: 1,
                reason: "r".into(),
            },
            IntegrityEvent::UntrustedKey {
                device: "d".into(),
                stream: "s".into(),
                seq: 1,
                reason: "r".into(),
            },
            IntegrityEvent::Gap {
                device: "d".into(),
                stream: "s".into(),
                seq: 1,
                reason: "r".into(),
            },
            IntegrityEvent::TimeDiscontinuity(samples::discontinuity()),
        ];
        let mut in_code: Vec<String> = examples.iter().map(|e| e.type_name().to_owned()).collect();
        in_code.sort();
        assert_eq!(in_schema, in_code);
        for e in &examples {
            let def = schema["$defs"]["integrity"]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["properties"]["type"]["const"] == e.type_name())
                .unwrap();
            assert_eq!(
                keys(&e.body()),
                keys(&def["properties"]),
                "{}",
                e.type_name()
            );
        }
    }
}
