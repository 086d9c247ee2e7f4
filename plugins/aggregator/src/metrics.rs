// SPDX-License-Identifier: MIT OR Apache-2.0
//! Anonymous audience metrics over fixed, UTC-aligned, non-overlapping windows.
//!
//! Input per frame: the capture time (UTC, ns since the epoch) and the confirmed person tracks
//! seen, each with its box, whether its face was frontal (attention), and classifier attributes
//! if any. Track ids only live here; nothing that leaves (see `veil_meta::events`) carries one.
//!
//! Definitions (Quividi's vocabulary):
//! * opportunities to see: distinct tracks seen in the window;
//! * watchers: those that gave attention at least once in the window;
//! * dwell: first to last sight of a track, counted in the window in which the track ends, by band;
//! * attention event: from the first frontal sighting to the first non-frontal one (or to one
//!   frame after the last frontal sighting when the face is lost for more than
//!   [`FACE_LOSS_FRAMES`] frames or the track ends); counted in the window in which it ends;
//! * attraction ratio: attention time / dwell time, over what ended in the window;
//! * zones by the box's bottom centre: occupancy (mean over the window's frames, max), visitors,
//!   flows A→B (a track's next zone differs from its last zone; gaps outside zones ignored) and
//!   line crossings per direction (a crossing counts when the side of the line a track was last
//!   clearly on changes, so jitter on the line is no crossing).
//!
//! A break in the stream's time ([`Metrics::discontinuity`]: an outage, a timestamp reset) ends
//! every track at its last sighting before it, so no dwell or attention spans it, and every
//! window it overlaps lists it (`discontinuities`): their counts cover only analysed time.

use std::collections::{BTreeMap, HashMap, HashSet};

use veil_meta::time::Break;
use veil_wire::event::{
    AttentionEvent, DwellBand, InspectionCounts, LineCrossings, MetricsWindow, TimeDiscontinuity,
    ZoneMetrics,
};
use veil_wire::time::format_time;

use crate::demographics;
use crate::tracker::BBox;
use crate::zones::{self, ZoneConfig};

pub const FACE_LOSS_FRAMES: u32 = 5;
/// At most this many empty windows are emitted for a jump in time (e.g. a paused camera).
const MAX_GAP_WINDOWS: u64 = 1440;

#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub track: u64,
    pub bbox: BBox,
    /// `Some(frontal)` when a face was attributed to this person on this frame.
    pub frontal: Option<bool>,
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct TrackState {
    first_ns: u64,
    last_ns: u64,
    attention_since: Option<u64>,
    last_frontal_ns: u64,
    face_missing: u32,
    last_zone: Option<usize>,
    /// Per line, the side the track was last clearly on.
    line_sides: Vec<Option<bool>>,
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct WindowAcc {
    seen: HashSet<u64>,
    watchers: HashSet<u64>,
    dwell_bands: [u32; 5],
    dwell_ns: u64,
    attention: Vec<AttentionEvent>,
    attention_ns: u64,
    frames: u64,
    occupancy_sum: Vec<u64>,
    occupancy_max: Vec<u32>,
    visitors: Vec<HashSet<u64>>,
    flows: BTreeMap<String, u32>,
    lines: Vec<LineCrossings>,
    /// zone → attribute → value → tracks.
    demographics: Vec<BTreeMap<String, BTreeMap<String, HashSet<u64>>>>,
    parts_ok: u32,
    parts_ng: u32,
}

#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    pub window_ns: u64,
    pub zones: ZoneConfig,
    pub demographics: bool,
    pub k: u32,
    /// Windows carry inspection counts (parts, OK, NG, yield).
    pub inspection: bool,
}

pub struct Metrics {
    config: AggregatorConfig,
    /// Capture time of the previous frame and the last frame interval: a frontal sighting
    /// lasts until the next frame.
    last_frame_ns: Option<u64>,
    frame_ns: u64,
    index: Option<u64>,
    acc: WindowAcc,
    tracks: HashMap<u64, TrackState>,
    /// Breaks not yet behind the current window: (last frame before, first after, record).
    breaks: Vec<(u64, u64, TimeDiscontinuity)>,
}

impl Metrics {
    pub fn new(config: AggregatorConfig) -> Self {
        let acc = Self::empty_acc(&config);
        Metrics {
            config,
            last_frame_ns: None,
            frame_ns: 0,
            index: None,
            acc,
            tracks: HashMap::new(),
            breaks: Vec::new(),
        }
    }

    fn empty_acc(config: &AggregatorConfig) -> WindowAcc {
        let (nz, nl) = (config.zones.zones.len(), config.zones.lines.len());
        WindowAcc {
            occupancy_sum: vec![0; nz],
            occupancy_max: vec![0; nz],
            visitors: vec![HashSet::new(); nz],
            lines: vec![LineCrossings::default(); nl],
            demographics: vec![BTreeMap::new(); nz],
            ..Default::default()
        }
    }

    /// Closes every window before the one holding `t_ns`; returns them.
    fn advance(&mut self, t_ns: u64) -> Vec<MetricsWindow> {
        let index = t_ns / self.config.window_ns;
        let mut out = Vec::new();
        match self.index {
            None => self.index = Some(index),
            Some(current) if index > current => {
                out.push(self.close(current, false));
                let gap = (index - current - 1).min(MAX_GAP_WINDOWS);
                for i in index - gap..index {
                    out.push(self.close(i, false));
                }
                self.index = Some(index);
                let start = index * self.config.window_ns;
                self.breaks.retain(|&(_, after, _)| after >= start);
            }
            _ => {}
        }
        out
    }

    fn close(&mut self, index: u64, partial: bool) -> MetricsWindow {
        let acc = std::mem::replace(&mut self.acc, Self::empty_acc(&self.config));
        let start = index * self.config.window_ns;
        let end = start + self.config.window_ns;
        let discontinuities = self
            .breaks
            .iter()
            .filter(|&&(before, after, _)| before < end && after >= start)
            .map(|(_, _, record)| record.clone())
            .collect();
        let cfg = &self.config;
        let zones = cfg
            .zones
            .zones
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let m = ZoneMetrics {
                    occupancy_mean: if acc.frames > 0 {
                        acc.occupancy_sum[i] as f64 / acc.frames as f64
                    } else {
                        0.0
                    },
                    occupancy_max: acc.occupancy_max[i],
                    visitors: acc.visitors[i].len() as u32,
                };
                (z.name.clone(), m)
            })
            .collect();
        let demographics = if cfg.demographics {
            cfg.zones
                .zones
                .iter()
                .enumerate()
                .map(|(i, z)| {
                    let visitors = &acc.visitors[i];
                    let breakdown = acc.demographics[i]
                        .iter()
                        .map(|(attr, values)| {
                            let mut counts: BTreeMap<String, u32> = values
                                .iter()
                                .map(|(v, t)| (v.clone(), t.len() as u32))
                                .collect();
                            // People without this attribute form their own cell, so the cells
                            // add up to the published visitor total.
                            let known: HashSet<&u64> = values.values().flatten().collect();
                            let unknown =
                                visitors.iter().filter(|t| !known.contains(t)).count() as u32;
                            if unknown > 0 {
                                *counts.entry("unknown".into()).or_default() += unknown;
                            }
                            (attr.clone(), demographics::suppress(&counts, cfg.k))
                        })
                        .collect();
                    (z.name.clone(), breakdown)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        let dwell_s = acc.dwell_ns as f64 / 1e9;
        let attention_s = acc.attention_ns as f64 / 1e9;
        MetricsWindow {
            version: MetricsWindow::VERSION,
            window_start: format_time(start),
            window_end: format_time(start + self.config.window_ns),
            partial,
            opportunities_to_see: acc.seen.len() as u32,
            watchers: acc.watchers.len() as u32,
            dwell_bands: DwellBand::ALL
                .iter()
                .zip(acc.dwell_bands)
                .map(|(b, n)| (b.label().to_owned(), n))
                .collect(),
            dwell_time_s: dwell_s,
            attention_events: acc.attention,
            attention_time_s: attention_s,
            attraction_ratio: if dwell_s > 0.0 {
                attention_s / dwell_s
            } else {
                0.0
            },
            zones,
            zone_flows: acc.flows,
            lines: cfg
                .zones
                .lines
                .iter()
                .zip(acc.lines)
                .map(|(l, c)| (l.name.clone(), c))
                .collect(),
            demographics,
            inspection: cfg.inspection.then(|| InspectionCounts {
                parts: acc.parts_ok + acc.parts_ng,
                ok: acc.parts_ok,
                ng: acc.parts_ng,
                yield_rate: (acc.parts_ok + acc.parts_ng > 0)
                    .then(|| acc.parts_ok as f64 / (acc.parts_ok + acc.parts_ng) as f64),
            }),
            discontinuities,
        }
    }

    /// A part decided on the current frame (after [`Metrics::frame`] for that frame).
    pub fn part(&mut self, ok: bool) {
        if ok {
            self.acc.parts_ok += 1;
        } else {
            self.acc.parts_ng += 1;
        }
    }

    fn end_attention(acc: &mut WindowAcc, t: &mut TrackState, end_ns: u64) {
        if let Some(start) = t.attention_since.take() {
            let end = end_ns.max(start);
            acc.attention.push(AttentionEvent {
                start: format_time(start),
                end: format_time(end),
                duration_s: (end - start) as f64 / 1e9,
            });
            acc.attention_ns += end - start;
        }
    }

    /// One frame: capture time and the confirmed tracks seen on it.
    pub fn frame(&mut self, t_ns: u64, observations: &[Observation]) -> Vec<MetricsWindow> {
        let out = self.advance(t_ns);
        if let Some(prev) = self.last_frame_ns.filter(|&p| t_ns > p) {
            self.frame_ns = t_ns - prev;
        }
        self.last_frame_ns = Some(t_ns);
        let frame_ns = self.frame_ns;
        let acc = &mut self.acc;
        acc.frames += 1;
        let mut occupancy = vec![0u32; self.config.zones.zones.len()];
        for o in observations {
            let t = self.tracks.entry(o.track).or_insert_with(|| TrackState {
                first_ns: t_ns,
                last_ns: t_ns,
                attention_since: None,
                last_frontal_ns: t_ns,
                face_missing: 0,
                last_zone: None,
                line_sides: vec![None; self.config.zones.lines.len()],
                attributes: BTreeMap::new(),
            });
            t.last_ns = t_ns;
            acc.seen.insert(o.track);
            for (k, v) in &o.attributes {
                t.attributes.insert(k.clone(), v.clone());
            }
            match o.frontal {
                Some(true) => {
                    t.face_missing = 0;
                    t.last_frontal_ns = t_ns;
                    t.attention_since.get_or_insert(t_ns);
                    acc.watchers.insert(o.track);
                }
                Some(false) => {
                    t.face_missing = 0;
                    Self::end_attention(acc, t, t_ns);
                }
                None => {
                    t.face_missing += 1;
                    if t.face_missing > FACE_LOSS_FRAMES {
                        let end = t.last_frontal_ns + frame_ns;
                        Self::end_attention(acc, t, end);
                    }
                }
            }
            let anchor = zones::anchor(&o.bbox);
            let zone = self
                .config
                .zones
                .zones
                .iter()
                .position(|z| zones::in_polygon(&z.polygon, anchor));
            if let Some(zi) = zone {
                occupancy[zi] += 1;
                acc.visitors[zi].insert(o.track);
                for (k, v) in &t.attributes {
                    acc.demographics[zi]
                        .entry(k.clone())
                        .or_default()
                        .entry(v.clone())
                        .or_default()
                        .insert(o.track);
                }
                if let Some(prev) = t.last_zone.filter(|&p| p != zi) {
                    let names = &self.config.zones.zones;
                    *acc.flows
                        .entry(format!("{}->{}", names[prev].name, names[zi].name))
                        .or_default() += 1;
                }
                t.last_zone = Some(zi);
            }
            for (li, line) in self.config.zones.lines.iter().enumerate() {
                match zones::crossing(line, &mut t.line_sides[li], anchor) {
                    Some(true) => acc.lines[li].forward += 1,
                    Some(false) => acc.lines[li].backward += 1,
                    None => {}
                }
            }
        }
        for (i, n) in occupancy.into_iter().enumerate() {
            acc.occupancy_sum[i] += n as u64;
            acc.occupancy_max[i] = acc.occupancy_max[i].max(n);
        }
        out
    }

    /// The tracker ended these tracks: their dwell and open attention are counted now.
    pub fn end_tracks(&mut self, ids: &[u64]) {
        self.end_tracks_by(ids, u64::MAX);
    }

    /// Ends tracks; an open attention event ends one frame after its last frontal sighting, but
    /// not after `cap_ns`.
    fn end_tracks_by(&mut self, ids: &[u64], cap_ns: u64) {
        for id in ids {
            if let Some(mut t) = self.tracks.remove(id) {
                let end = (t.last_frontal_ns + self.frame_ns).min(cap_ns);
                Self::end_attention(&mut self.acc, &mut t, end);
                let dwell = t.last_ns - t.first_ns;
                self.acc.dwell_bands[DwellBand::of_seconds(dwell as f64 / 1e9) as usize] += 1;
                self.acc.dwell_ns += dwell;
            }
        }
    }

    /// A break in the stream's time, before the first frame after it is given: every track ends
    /// at its last sighting, and the windows the break overlaps will list it.
    pub fn discontinuity(&mut self, brk: &Break) {
        let ids: Vec<u64> = self.tracks.keys().copied().collect();
        // Attention ends by the last frame before the break at the latest.
        self.end_tracks_by(&ids, brk.last_before_ns);
        // The step across the break is no frame interval.
        self.last_frame_ns = None;
        self.breaks
            .push((brk.last_before_ns, brk.first_after_ns, brk.to_wire()));
    }

    /// End of stream: every track ends and the current window is flushed as partial.
    pub fn finish(&mut self) -> Vec<MetricsWindow> {
        let ids: Vec<u64> = self.tracks.keys().copied().collect();
        self.end_tracks(&ids);
        match self.index.take() {
            Some(i) => vec![self.close(i, true)],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    /// 2026-11-23T10:00:00Z, a minute boundary.
    const T0: u64 = 1_795_428_000 * S;

    fn config(zones: &str, demographics: bool, window_s: u64) -> AggregatorConfig {
        AggregatorConfig {
            window_ns: window_s * S,
            zones: ZoneConfig::parse(zones).unwrap(),
            demographics,
            k: 5,
            inspection: false,
        }
    }

    fn obs(track: u64, x: f64, frontal: Option<bool>) -> Observation {
        Observation {
            track,
            bbox: [x - 0.05, 0.3, x + 0.05, 0.7],
            frontal,
            attributes: vec![],
        }
    }

    #[test]
    fn a_person_dwelling_20_s_lands_in_the_15_30_band() {
        let mut m = Metrics::new(config("", false, 60));
        let mut out = Vec::new();
        for f in 0..=200u64 {
            out.extend(m.frame(T0 + f * S / 10, &[obs(1, 0.5, None)]));
        }
        out.extend(m.frame(T0 + 30 * S, &[]));
        m.end_tracks(&[1]);
        out.extend(m.finish());
        assert_eq!(out.len(), 1);
        let w = &out[0];
        assert_eq!(w.window_start, "2026-11-23T10:00:00.000000000Z");
        assert!(w.partial);
        assert_eq!(w.opportunities_to_see, 1);
        assert_eq!(w.dwell(DwellBand::UpTo30s), 1);
        assert_eq!(w.dwell_bands.values().sum::<u32>(), 1);
        assert!((w.dwell_time_s - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_face_turning_away_ends_an_attention_event() {
        let mut m = Metrics::new(config("", false, 60));
        for f in 0..50u64 {
            // Frontal for 3 s, then turned away for 2 s.
            m.frame(T0 + f * S / 10, &[obs(1, 0.5, Some(f < 30))]);
        }
        let w = m.finish().remove(0);
        assert_eq!(w.watchers, 1);
        assert_eq!(w.attention_events.len(), 1);
        assert!(
            (w.attention_events[0].duration_s - 3.0).abs() < 1e-9,
            "{:?}",
            w.attention_events
        );
        assert!((w.attention_time_s - 3.0).abs() < 1e-9);
        assert!((w.attraction_ratio - 3.0 / 4.9).abs() < 1e-6);
    }

    #[test]
    fn a_single_frontal_sighting_lasts_one_frame() {
        let mut m = Metrics::new(config("", false, 60));
        m.frame(T0, &[obs(1, 0.5, Some(true))]);
        for f in 1..10u64 {
            m.frame(T0 + f * S / 10, &[obs(1, 0.5, None)]);
        }
        let w = m.finish().remove(0);
        assert_eq!(w.attention_events.len(), 1);
        assert!(
            (w.attention_events[0].duration_s - 0.1).abs() < 1e-9,
            "{:?}",
            w.attention_events
        );
    }

    #[test]
    fn windows_are_aligned_to_utc_and_gaps_emit_empty_windows() {
        let mut m = Metrics::new(config("", false, 60));
        let mut out = m.frame(T0 + 59 * S, &[obs(1, 0.5, None)]);
        out.extend(m.frame(T0 + 185 * S, &[]));
        assert_eq!(out.len(), 3, "windows 10:00, 10:01 and 10:02 closed");
        assert_eq!(out[0].window_end, "2026-11-23T10:01:00.000000000Z");
        assert_eq!(out[2].window_start, "2026-11-23T10:02:00.000000000Z");
        assert_eq!(
            (out[0].opportunities_to_see, out[1].opportunities_to_see),
            (1, 0)
        );
    }

    #[test]
    fn zone_flow_a_to_b_is_counted_once_and_lines_by_direction() {
        let zones = "[[zone]]\nname='a'\npolygon=[[0,0],[0.5,0],[0.5,1],[0,1]]\n\
                     [[zone]]\nname='b'\npolygon=[[0.5,0],[1,0],[1,1],[0.5,1]]\n\
                     [[line]]\nname='mid'\nfrom=[0.5,0]\nto=[0.5,1]\n";
        let mut m = Metrics::new(config(zones, false, 60));
        for f in 0..40u64 {
            // Walks from x=0.1 to x=0.88 and stays; a second person stays in a.
            let x = (0.1 + 0.02 * f as f64).min(0.88);
            m.frame(T0 + f * S / 10, &[obs(1, x, None), obs(2, 0.2, None)]);
        }
        let w = m.finish().remove(0);
        assert_eq!(w.zone_flows.get("a->b"), Some(&1));
        assert_eq!(w.zone_flows.len(), 1);
        assert_eq!(
            w.lines["mid"],
            LineCrossings {
                forward: 1,
                backward: 0
            }
        );
        assert_eq!(w.zones["a"].visitors, 2);
        assert_eq!(w.zones["b"].visitors, 1);
        assert_eq!(w.zones["a"].occupancy_max, 2);
    }

    #[test]
    fn small_demographic_cells_are_suppressed_and_not_recoverable() {
        let zones = "[[zone]]\nname='all'\npolygon=[[0,0],[1,0],[1,1],[0,1]]\n";
        let mut m = Metrics::new(config(zones, true, 300));
        let mut people = Vec::new();
        for id in 1..=14u64 {
            let gender = if id <= 4 { "female" } else { "male" };
            people.push(Observation {
                track: id,
                bbox: [0.1, 0.1, 0.2, 0.5],
                frontal: None,
                attributes: vec![("gender".into(), gender.into())],
            });
        }
        m.frame(T0, &people);
        let w = m.finish().remove(0);
        let cells = &w.demographics["all"]["gender"];
        assert_eq!(cells["female"], None, "4 < k = 5");
        assert_eq!(cells["male"], None, "else 14 - male = female");
        assert_eq!(w.zones["all"].visitors, 14);
    }
}
