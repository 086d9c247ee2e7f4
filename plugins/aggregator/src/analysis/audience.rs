// SPDX-License-Identifier: MIT OR Apache-2.0
//! Audience analytics: people tracked across frames by motion only (ephemeral ids, no
//! appearance), attributed faces for attention, excluded zones dropped, then anonymous metrics
//! per UTC-aligned window ([`crate::metrics`]).

use veil_meta::time::Break;
use veil_wire::event::Event;

use super::{Analysis, Frame, FramePixels, Object, Output};
use crate::attention;
use crate::metrics::{AggregatorConfig, Metrics, Observation};
use crate::tracker::{BBox, Tracker, TrackerConfig};
use crate::zones::ZoneConfig;

/// What an audience analysis needs.
#[derive(Debug, Clone)]
pub struct AudiencePlan {
    pub window_ns: u64,
    pub zones: ZoneConfig,
    pub person_label: String,
    pub face_label: String,
    pub tracker: TrackerConfig,
    /// Demographic breakdowns with cells below `k` suppressed; only for windows of at least
    /// [`MIN_DEMOGRAPHICS_WINDOW_S`] (the plan cannot be built otherwise).
    pub demographics: Option<u32>,
}

/// Demographic breakdowns need windows at least this long (seconds): shorter ones could single
/// people out.
pub const MIN_DEMOGRAPHICS_WINDOW_S: u64 = 300;

pub struct Audience {
    person_label: String,
    face_label: String,
    zones: ZoneConfig,
    tracker: Tracker,
    metrics: Metrics,
}

/// A person candidate on one frame: the ROIs it came from, its box and score, whether the face
/// attributed to it is frontal, and its classifier attributes.
struct Candidate {
    rois: Vec<usize>,
    bbox: BBox,
    score: f64,
    frontal: Option<bool>,
    attributes: Vec<(String, String)>,
}

impl Candidate {
    fn of(o: &Object, frontal: Option<bool>) -> Candidate {
        Candidate {
            rois: vec![o.roi],
            bbox: o.bbox,
            score: o.confidence,
            frontal,
            attributes: o
                .classes
                .iter()
                .map(|(name, label, _)| (name.clone(), label.clone()))
                .collect(),
        }
    }
}

impl Audience {
    pub fn new(plan: AudiencePlan) -> Audience {
        let metrics = Metrics::new(AggregatorConfig {
            window_ns: plan.window_ns,
            zones: plan.zones.clone(),
            demographics: plan.demographics.is_some(),
            k: plan.demographics.unwrap_or(0),
            inspection: false,
        });
        Audience {
            person_label: plan.person_label,
            face_label: plan.face_label,
            zones: plan.zones,
            tracker: Tracker::new(plan.tracker),
            metrics,
        }
    }

    /// Persons, plus faces no person contains; a face's frontality and attributes go to the
    /// smallest person box containing its centre.
    fn candidates(&self, objects: &[Object]) -> Vec<Candidate> {
        let mut persons: Vec<Candidate> = objects
            .iter()
            .filter(|o| o.label == self.person_label)
            .map(|o| Candidate::of(o, None))
            .collect();
        let faces = objects.iter().filter(|o| o.label == self.face_label);
        for o in faces {
            let face = Candidate::of(o, o.landmarks_px.as_deref().map(attention::is_frontal));
            let fb = face.bbox;
            let (cx, cy) = ((fb[0] + fb[2]) / 2.0, (fb[1] + fb[3]) / 2.0);
            let owner = persons
                .iter_mut()
                .filter(|p| {
                    cx >= p.bbox[0] && cx <= p.bbox[2] && cy >= p.bbox[1] && cy <= p.bbox[3]
                })
                .min_by(|a, b| {
                    let area = |c: &Candidate| (c.bbox[2] - c.bbox[0]) * (c.bbox[3] - c.bbox[1]);
                    area(a).total_cmp(&area(b))
                });
            match owner {
                Some(p) => {
                    p.rois.extend(face.rois);
                    p.attributes.extend(face.attributes);
                    p.frontal = match (p.frontal, face.frontal) {
                        (Some(a), Some(b)) => Some(a || b),
                        (a, b) => a.or(b),
                    };
                }
                // A face nobody's box contains is a person of its own.
                None => persons.push(face),
            }
        }
        persons
    }
}

impl Analysis for Audience {
    fn frame(&mut self, frame: &Frame, _: &dyn FramePixels) -> Result<Output, String> {
        let mut candidates = self.candidates(frame.objects);
        candidates.retain(|c| !self.zones.excluded(&c.bbox));
        let boxes: Vec<BBox> = candidates.iter().map(|c| c.bbox).collect();
        let scores: Vec<f64> = candidates.iter().map(|c| c.score).collect();
        let (ids, ended) = self.tracker.update(&boxes, &scores);
        self.metrics.end_tracks(&ended);
        let mut out = Output::default();
        let mut observations = Vec::new();
        for (c, id) in candidates.into_iter().zip(ids) {
            let Some(track) = id else { continue };
            out.object_ids.extend(c.rois.iter().map(|&r| (r, track)));
            observations.push(Observation {
                track,
                bbox: c.bbox,
                frontal: c.frontal,
                attributes: c.attributes,
            });
        }
        out.events = self
            .metrics
            .frame(frame.capture_ns, &observations)
            .into_iter()
            .map(Event::Window)
            .collect();
        Ok(out)
    }

    fn discontinuity(&mut self, brk: &Break) -> Vec<Event> {
        // New tracks after the break (ids keep counting, so none is reused within a window).
        self.tracker.finish();
        self.metrics.discontinuity(brk);
        Vec::new()
    }

    fn finish(&mut self, _end_ns: u64) -> Vec<Event> {
        self.metrics
            .finish()
            .into_iter()
            .map(Event::Window)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{NoPixels, object};

    fn plan() -> AudiencePlan {
        AudiencePlan {
            window_ns: 10_000_000_000,
            zones: ZoneConfig::default(),
            person_label: "person".into(),
            face_label: "face".into(),
            tracker: TrackerConfig {
                min_hits: 1,
                ..Default::default()
            },
            demographics: None,
        }
    }

    #[test]
    fn people_are_tracked_counted_and_their_rois_get_ids() {
        let mut a = Audience::new(plan());
        let t0 = 1_795_428_000_000_000_000u64;
        let mut ids = Vec::new();
        for f in 0..20u64 {
            let x = 0.1 + 0.01 * f as f64;
            let objects = [
                object(0, "person", [x, 0.2, x + 0.1, 0.6], 0.9),
                object(1, "face", [x + 0.03, 0.22, x + 0.07, 0.3], 0.8),
                object(2, "car", [0.7, 0.7, 0.9, 0.9], 0.9),
            ];
            let out = a
                .frame(
                    &Frame {
                        capture_ns: t0 + f * 100_000_000,
                        objects: &objects,
                    },
                    &NoPixels,
                )
                .unwrap();
            ids.extend(out.object_ids);
        }
        // The person and its face carry one id; the car none.
        assert!(ids.iter().all(|&(roi, id)| roi < 2 && id == ids[0].1));
        assert!(ids.iter().any(|&(roi, _)| roi == 1));
        let windows = a.finish(t0 + 2_000_000_000);
        let [Event::Window(w)] = windows.as_slice() else {
            panic!("{windows:?}")
        };
        assert_eq!(w.opportunities_to_see, 1);
        assert!(w.inspection.is_none());
    }
}

/// Each kind of break in time, run through the capture timeline and the audience analysis as
/// the element runs them: exact windows and dwell.
#[cfg(test)]
mod discontinuity_tests {
    use super::*;
    use crate::analysis::testing::{NoPixels, object};
    use veil_meta::time::{DiscontinuityCause, Timeline};
    use veil_wire::event::{DwellBand, MetricsWindow, TimeDiscontinuity};
    use veil_wire::time::format_time;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;
    /// 2026-11-23T10:00:00Z, a minute boundary.
    const T0: u64 = 1_795_428_000 * S;

    /// 50 frames, one every 100 ms from running time `from_ms` (and, for a live source, clock
    /// time `clock_from_ms`): 4.9 s of one person standing still.
    fn segment(from_ms: u64, clock_from_ms: Option<u64>) -> Vec<(u64, Option<u64>)> {
        (0..50)
            .map(|i| {
                (
                    (from_ms + 100 * i) * MS,
                    clock_from_ms.map(|c| (c + 100 * i) * MS),
                )
            })
            .collect()
    }

    /// Runs the frames (running time, clock time) through a 2 s-gap timeline anchored at
    /// `T0 + first running time` and an audience analysis with 10 s windows; returns the windows
    /// and the breaks.
    fn run(frames: &[(u64, Option<u64>)]) -> (Vec<MetricsWindow>, Vec<TimeDiscontinuity>) {
        let mut timeline = Timeline::new(2 * S);
        let mut audience = Audience::new(AudiencePlan {
            window_ns: 10 * S,
            zones: ZoneConfig::default(),
            person_label: "person".into(),
            face_label: "face".into(),
            tracker: TrackerConfig {
                min_hits: 1,
                ..Default::default()
            },
            demographics: None,
        });
        let mut events = Vec::new();
        let objects = [object(0, "person", [0.4, 0.2, 0.6, 0.8], 0.9)];
        let mut last = 0;
        for &(running, clock) in frames {
            let (capture_ns, brk) = timeline.next(running, clock, || T0 + running);
            if let Some(brk) = brk {
                events.push(Event::Discontinuity(brk.to_wire()));
                events.extend(audience.discontinuity(&brk));
            }
            let frame = Frame {
                capture_ns,
                objects: &objects,
            };
            events.extend(audience.frame(&frame, &NoPixels).unwrap().events);
            last = capture_ns;
        }
        events.extend(audience.finish(last));
        let mut windows = Vec::new();
        let mut breaks = Vec::new();
        for e in events {
            match e {
                Event::Window(w) => windows.push(w),
                Event::Discontinuity(d) => breaks.push(d),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Never a window twice or out of order.
        for pair in windows.windows(2) {
            assert!(pair[0].window_start < pair[1].window_start, "{pair:?}");
        }
        (windows, breaks)
    }

    fn at(seconds_ms: u64) -> String {
        format_time(T0 + seconds_ms * MS)
    }

    /// A window's start, OTS, dwell band 0–5 s, dwell time, partial flag and the causes it lists.
    type Summary = (String, u32, u32, f64, bool, Vec<DiscontinuityCause>);

    fn summary(w: &MetricsWindow) -> Summary {
        (
            w.window_start.clone(),
            w.opportunities_to_see,
            w.dwell(DwellBand::UpTo5s),
            (w.dwell_time_s * 1000.0).round() / 1000.0,
            w.partial,
            w.discontinuities.iter().map(|d| d.cause).collect(),
        )
    }

    /// Two [`segment`]s from `(running ms, clock ms)` `first` and `second`: the windows'
    /// summaries and the breaks.
    fn around_a_break(
        first: (u64, Option<u64>),
        second: (u64, Option<u64>),
    ) -> (Vec<Summary>, Vec<TimeDiscontinuity>) {
        let mut frames = segment(first.0, first.1);
        frames.extend(segment(second.0, second.1));
        let (windows, breaks) = run(&frames);
        (windows.iter().map(summary).collect(), breaks)
    }

    #[test]
    fn a_stall_ends_the_track_and_every_window_it_overlaps_lists_it() {
        // Live: 0–4.9 s, nothing for 10.1 s, 15.0–19.9 s; clock and timestamps agree.
        let (windows, breaks) = around_a_break((0, Some(0)), (15_000, Some(15_000)));
        use DiscontinuityCause::Stall;
        assert_eq!(
            windows,
            vec![
                (at(0), 1, 1, 4.9, false, vec![Stall]),
                (at(10_000), 1, 1, 4.9, true, vec![Stall]),
            ]
        );
        assert_eq!(breaks.len(), 1);
        assert_eq!(
            (breaks[0].last_before.clone(), breaks[0].first_after.clone()),
            (at(4_900), at(15_000))
        );
        assert!((breaks[0].gap_s - 10.1).abs() < 1e-9);
    }

    #[test]
    fn timestamps_reset_to_zero_continue_on_the_clock_without_a_window_twice() {
        // Live: running 30.0–34.9 s; the camera comes back with timestamps from 0 when the
        // clock says 45.0 s.
        let (windows, breaks) = around_a_break((30_000, Some(30_000)), (0, Some(45_000)));
        use DiscontinuityCause::TimestampReset;
        assert_eq!(
            windows,
            vec![
                (at(30_000), 1, 1, 4.9, false, vec![TimestampReset]),
                (at(40_000), 1, 1, 4.9, true, vec![TimestampReset]),
            ]
        );
        assert_eq!(breaks[0].first_after, at(45_000));
        assert!((breaks[0].timestamp_step_s + 34.9).abs() < 1e-9);
    }

    #[test]
    fn a_forward_jump_is_held_to_the_clock_and_ends_the_track() {
        // Live: 0–4.9 s, then the timestamps leap an hour while the clock moves 100 ms.
        let (windows, breaks) = around_a_break((0, Some(0)), (3_605_000, Some(5_000)));
        assert_eq!(
            windows,
            vec![(
                at(0),
                2,
                2,
                9.8,
                true,
                vec![DiscontinuityCause::ForwardJump]
            )]
        );
        assert_eq!(breaks[0].first_after, at(5_000));
    }

    #[test]
    fn a_backward_step_in_a_file_moves_on_by_one_frame() {
        // A file (no clock): 100.0–104.9 s, then timestamps step back to 50 s.
        let (windows, breaks) = around_a_break((100_000, None), (50_000, None));
        assert_eq!(
            windows,
            vec![(
                at(100_000),
                2,
                2,
                9.8,
                true,
                vec![DiscontinuityCause::BackwardStep]
            )]
        );
        assert_eq!(
            (breaks[0].last_before.clone(), breaks[0].first_after.clone()),
            (at(104_900), at(105_000))
        );
    }

    #[test]
    fn without_a_break_one_person_is_one_track() {
        // The control: the same 9.9 s without a break is one person, one dwell.
        let frames: Vec<_> = (0..100)
            .map(|i| (i * 100 * MS, Some(i * 100 * MS)))
            .collect();
        let (windows, breaks) = run(&frames);
        assert!(breaks.is_empty());
        assert_eq!(
            windows.iter().map(summary).collect::<Vec<_>>(),
            vec![(at(0), 1, 0, 9.9, true, vec![])]
        );
        assert_eq!(windows[0].dwell(DwellBand::UpTo15s), 1);
    }
}
