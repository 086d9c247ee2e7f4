// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fail-closed mask bookkeeping: follow every masked face from frame to frame, hold its mask
//! through detector misses and fast motion, and decide what a frame without fresh inference
//! gets.
//!
//! **Tracks with hysteresis.** A detection at or above `threshold` starts a mask at once. A
//! weaker one (down to `track_threshold`) only continues an existing mask it overlaps — the way
//! ByteTrack uses low-score boxes: a face the detector is unsure about while it turns, blurs or
//! darkens stays masked and stays *where it is*, while weak boxes on background texture, which
//! match no face, mask nothing.
//!
//! **Prediction.** A mask not matched on a frame moves on with its smoothed velocity and grows
//! with the uncertainty: by `growth_per_frame` of its size and by half its speed, per frame
//! since its last sighting. It is released `hold_frames` after its last sighting.
//!
//! **Time, not only frames.** `hold_time` and `stale_time` (nanoseconds of stream time), when set,
//! replace the frame counts for frames that carry a timestamp, so fail-closed means the same at
//! 5 fps and at 60 fps, and through a variable frame rate. A frame without a timestamp falls back
//! to the frame counts.
//!
//! Boxes are normalized `[x_min, y_min, x_max, y_max]`.

use veil_meta::roi::iou;

pub type BBox = [f64; 4];

fn centre(b: &BBox) -> (f64, f64) {
    ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
}

/// A detection as the anonymizer sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bbox: BBox,
    pub confidence: f64,
}

#[derive(Debug, Clone)]
struct Track {
    bbox: BBox,
    /// Smoothed centre motion per frame.
    velocity: (f64, f64),
    last_seen: u64,
    /// Stream time of the last sighting, when that frame had a timestamp.
    last_seen_time: Option<u64>,
    sightings: u32,
}

/// Weight of the newest motion in the smoothed velocity.
const VELOCITY_SMOOTHING: f64 = 0.6;

impl Track {
    /// Where the mask is expected `frame` frames on: moved along its velocity and grown for
    /// every frame it is not seen, by `growth` of its size and by half its speed.
    fn predicted(&self, frame: u64, growth: f64) -> BBox {
        let dt = frame.saturating_sub(self.last_seen) as f64;
        let (dx, dy) = (self.velocity.0 * dt, self.velocity.1 * dt);
        let g = 1.0 + growth * dt;
        let (cx, cy) = centre(&self.bbox);
        let (hw, hh) = (
            (self.bbox[2] - self.bbox[0]) / 2.0 * g + 0.5 * self.velocity.0.abs() * dt,
            (self.bbox[3] - self.bbox[1]) / 2.0 * g + 0.5 * self.velocity.1.abs() * dt,
        );
        [cx + dx - hw, cy + dy - hh, cx + dx + hw, cy + dy + hh]
    }
}

/// What the element knows about a frame's analysis.
#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    /// A relevant detector ran on this frame; these are its detections of the masked labels.
    Fresh(Vec<Candidate>),
    /// A relevant detector is upstream but did not run on this frame (skipped or failed).
    Stale,
    /// No detector upstream reports the masked labels at all.
    Unanalyzed,
}

/// What to do with a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Mask these boxes (fresh detections plus held ones).
    Mask { boxes: Vec<BBox>, held_only: bool },
    /// Black the whole frame out.
    Blackout,
    /// Pass without detection masks (explicit opt-in).
    PassUnmasked,
}

/// How detections become masks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Frames a mask outlives its last sighting.
    pub hold_frames: u32,
    /// Frames without fresh inference that held masks may cover before the frame is blacked out.
    pub stale_frames: u32,
    /// Stream time (ns) a mask outlives its last sighting; replaces `hold_frames` when set.
    pub hold_time: Option<u64>,
    /// Stream time (ns) without fresh inference that held masks may cover; replaces
    /// `stale_frames` when set.
    pub stale_time: Option<u64>,
    pub allow_unanalyzed: bool,
    /// Confidence that starts a mask.
    pub threshold: f64,
    /// Confidence that continues a mask (≤ `threshold`).
    pub track_threshold: f64,
    /// Growth of a held mask per frame since its last sighting, as a fraction of its size.
    pub growth_per_frame: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            hold_frames: 8,
            stale_frames: 4,
            hold_time: None,
            stale_time: None,
            allow_unanalyzed: false,
            threshold: 0.0,
            track_threshold: 0.0,
            growth_per_frame: 0.05,
        }
    }
}

pub struct FailClosed {
    tracks: Vec<Track>,
    pub policy: Policy,
    /// Frame number and stream time of the last frame with fresh inference.
    last_fresh: Option<(u64, Option<u64>)>,
}

/// A frame's place in the stream: its number and, when it has one, its timestamp (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub frame: u64,
    pub time: Option<u64>,
}

impl At {
    /// Whether `self` is at most the limit after `since`: by time when a time limit is set and
    /// both frames have timestamps, otherwise by frame count.
    fn within(self, since: (u64, Option<u64>), frames: u32, time: Option<u64>) -> bool {
        match (time, self.time, since.1) {
            (Some(limit), Some(now), Some(then)) => now.saturating_sub(then) <= limit,
            _ => self.frame.saturating_sub(since.0) <= frames as u64,
        }
    }

    /// Like [`At::within`], but a frame whose time is before `since`'s (timestamps reset by a
    /// reconnecting source) is beyond every limit, whatever decides the limit: the last analysis
    /// vouches for no frame until the next one.
    fn fresh_within(self, since: (u64, Option<u64>), frames: u32, time: Option<u64>) -> bool {
        match (self.time, since.1) {
            (Some(now), Some(then)) if now < then => false,
            _ => self.within(since, frames, time),
        }
    }
}

/// IoU above which a detection continues an existing mask (against its predicted box).
const MATCH_IOU: f64 = 0.2;

impl FailClosed {
    pub fn new(policy: Policy) -> Self {
        FailClosed {
            tracks: Vec::new(),
            policy,
            last_fresh: None,
        }
    }

    /// Masks currently followed.
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }

    /// What the frame numbered `frame` gets; see [`FailClosed::decide_at`] for frames with a
    /// timestamp.
    pub fn decide(&mut self, frame: u64, analysis: Analysis) -> Decision {
        self.decide_at(At { frame, time: None }, analysis)
    }

    /// What the frame `at` gets, given how it was analysed.
    pub fn decide_at(&mut self, at: At, analysis: Analysis) -> Decision {
        let frame = at.frame;
        match analysis {
            Analysis::Fresh(candidates) => {
                self.last_fresh = Some((frame, at.time));
                Decision::Mask {
                    boxes: self.observe(at, &candidates),
                    held_only: false,
                }
            }
            Analysis::Stale | Analysis::Unanalyzed => {
                let p = self.policy;
                let fresh_enough = matches!(analysis, Analysis::Stale)
                    && self
                        .last_fresh
                        .is_some_and(|f| at.fresh_within(f, p.stale_frames, p.stale_time));
                if fresh_enough {
                    Decision::Mask {
                        boxes: self.held(frame),
                        held_only: true,
                    }
                } else if self.policy.allow_unanalyzed {
                    Decision::PassUnmasked
                } else {
                    Decision::Blackout
                }
            }
        }
    }

    /// Updates the tracks with this frame's detections; returns every mask for the frame.
    fn observe(&mut self, at: At, candidates: &[Candidate]) -> Vec<BBox> {
        let (frame, p) = (at.frame, self.policy);
        let usable: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.confidence >= p.track_threshold.min(p.threshold))
            .collect();
        // Greedy association, best overlap first, against where each mask is expected now
        // (grown as for a miss, so fast faces still overlap their prediction).
        let predicted: Vec<BBox> = self
            .tracks
            .iter()
            .map(|t| t.predicted(frame, p.growth_per_frame))
            .collect();
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (ti, pb) in predicted.iter().enumerate() {
            for (di, c) in usable.iter().enumerate() {
                let v = iou(pb, &c.bbox).max(containment(&c.bbox, pb));
                if v >= MATCH_IOU {
                    pairs.push((v, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut track_used, mut det_used) =
            (vec![false; self.tracks.len()], vec![false; usable.len()]);
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let t = &mut self.tracks[ti];
            let dt = frame.saturating_sub(t.last_seen).max(1) as f64;
            let (ox, oy) = centre(&t.bbox);
            let (nx, ny) = centre(&usable[di].bbox);
            let v = ((nx - ox) / dt, (ny - oy) / dt);
            t.velocity = if t.sightings == 1 {
                v
            } else {
                (
                    VELOCITY_SMOOTHING * v.0 + (1.0 - VELOCITY_SMOOTHING) * t.velocity.0,
                    VELOCITY_SMOOTHING * v.1 + (1.0 - VELOCITY_SMOOTHING) * t.velocity.1,
                )
            };
            t.bbox = usable[di].bbox;
            t.last_seen = frame;
            t.last_seen_time = at.time;
            t.sightings += 1;
        }
        let mut masks: Vec<BBox> = Vec::new();
        for (di, c) in usable.iter().enumerate() {
            if det_used[di] {
                masks.push(c.bbox);
            } else if c.confidence >= p.threshold {
                masks.push(c.bbox);
                self.tracks.push(Track {
                    bbox: c.bbox,
                    velocity: (0.0, 0.0),
                    last_seen: frame,
                    last_seen_time: at.time,
                    sightings: 1,
                });
            }
        }
        // Time went back (a reconnected source): a mask's hold starts again from this frame,
        // neither dropped early nor kept for as long as time went back.
        if let Some(now) = at.time {
            for t in &mut self.tracks {
                if t.last_seen_time.is_some_and(|then| now < then) {
                    t.last_seen_time = Some(now);
                }
            }
        }
        self.tracks
            .retain(|t| at.within((t.last_seen, t.last_seen_time), p.hold_frames, p.hold_time));
        masks.extend(
            self.tracks
                .iter()
                .filter(|t| t.last_seen != frame)
                .map(|t| t.predicted(frame, p.growth_per_frame)),
        );
        masks
    }

    /// Masks for a frame without fresh inference: every held track, predicted.
    fn held(&self, frame: u64) -> Vec<BBox> {
        self.tracks
            .iter()
            .map(|t| t.predicted(frame, self.policy.growth_per_frame))
            .collect()
    }
}

/// The share of `inner` that lies inside `outer`.
fn containment(inner: &BBox, outer: &BBox) -> f64 {
    let w = (inner[2].min(outer[2]) - inner[0].max(outer[0])).max(0.0);
    let h = (inner[3].min(outer[3]) - inner[1].max(outer[1])).max(0.0);
    let area = (inner[2] - inner[0]).max(0.0) * (inner[3] - inner[1]).max(0.0);
    if area <= 0.0 { 0.0 } else { w * h / area }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f64) -> BBox {
        [x, 0.2, x + 0.1, 0.4]
    }

    fn sure(b: BBox) -> Candidate {
        Candidate {
            bbox: b,
            confidence: 0.9,
        }
    }

    fn weak(b: BBox) -> Candidate {
        Candidate {
            bbox: b,
            confidence: 0.15,
        }
    }

    fn policy(hold: u32, stale: u32) -> Policy {
        Policy {
            hold_frames: hold,
            stale_frames: stale,
            threshold: 0.5,
            track_threshold: 0.1,
            ..Policy::default()
        }
    }

    fn masks(d: Decision) -> Vec<BBox> {
        match d {
            Decision::Mask { boxes, .. } => boxes,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_blinking_face_stays_masked_and_moves_on() {
        let mut fc = FailClosed::new(policy(3, 2));
        fc.decide(0, Analysis::Fresh(vec![sure(face(0.10))]));
        fc.decide(1, Analysis::Fresh(vec![sure(face(0.12))]));
        // The detector blinks for two frames: the mask is held, moved along (+0.02/frame).
        for f in 2..=3 {
            let boxes = masks(fc.decide(f, Analysis::Fresh(vec![])));
            assert_eq!(boxes.len(), 1);
            let expected_centre = 0.12 + 0.05 + 0.02 * (f - 1) as f64;
            assert!(
                (centre(&boxes[0]).0 - expected_centre).abs() < 1e-9,
                "frame {f}: {boxes:?}"
            );
            assert!(boxes[0][2] - boxes[0][0] > 0.1, "held masks grow");
        }
        // It is found again and continues the same mask.
        fc.decide(4, Analysis::Fresh(vec![sure(face(0.18))]));
        assert_eq!(fc.tracked(), 1);
        // Gone for longer than hold-frames: released.
        for f in 5..=8 {
            fc.decide(f, Analysis::Fresh(vec![]));
        }
        assert!(masks(fc.decide(9, Analysis::Fresh(vec![]))).is_empty());
    }

    #[test]
    fn fast_faces_are_followed_and_their_held_masks_cover_where_they_went() {
        let mut fc = FailClosed::new(policy(4, 2));
        // 0.08 of the frame per frame: faster than the face is wide.
        for f in 0..4 {
            fc.decide(f, Analysis::Fresh(vec![sure(face(0.1 + 0.08 * f as f64))]));
        }
        assert_eq!(
            fc.tracked(),
            1,
            "one track despite no overlap between frames"
        );
        // Missed for two frames: the held mask still covers where the face really is.
        for f in 4..6 {
            let truth = face(0.1 + 0.08 * f as f64);
            let boxes = masks(fc.decide(f, Analysis::Fresh(vec![])));
            assert!(
                boxes.iter().any(|b| containment(&truth, b) > 0.99),
                "frame {f}: {boxes:?} vs {truth:?}"
            );
        }
    }

    #[test]
    fn weak_detections_continue_masks_but_start_none() {
        let mut fc = FailClosed::new(policy(1, 2));
        // A weak box on its own masks nothing and starts no track.
        assert!(masks(fc.decide(0, Analysis::Fresh(vec![weak(face(0.5))]))).is_empty());
        assert_eq!(fc.tracked(), 0);
        // A sure face, then weak sightings: the mask follows the weak boxes, long after the
        // hold (1 frame) would have released it.
        fc.decide(1, Analysis::Fresh(vec![sure(face(0.1))]));
        for f in 2..8 {
            let x = 0.1 + 0.01 * f as f64;
            let boxes = masks(fc.decide(f, Analysis::Fresh(vec![weak(face(x))])));
            assert_eq!(boxes, vec![face(x)], "frame {f}");
        }
        // Below the track threshold even a matching box is ignored.
        let mut fc = FailClosed::new(policy(0, 2));
        fc.decide(0, Analysis::Fresh(vec![sure(face(0.1))]));
        let faint = Candidate {
            bbox: face(0.1),
            confidence: 0.05,
        };
        fc.decide(1, Analysis::Fresh(vec![faint]));
        assert!(masks(fc.decide(2, Analysis::Fresh(vec![]))).is_empty());
    }

    #[test]
    fn frames_without_fresh_inference_hold_then_black_out() {
        let mut fc = FailClosed::new(policy(10, 2));
        fc.decide(0, Analysis::Fresh(vec![sure(face(0.5))]));
        for f in 1..=2 {
            match fc.decide(f, Analysis::Stale) {
                Decision::Mask {
                    boxes,
                    held_only: true,
                } => assert_eq!(boxes.len(), 1),
                other => panic!("frame {f}: {other:?}"),
            }
        }
        assert_eq!(fc.decide(3, Analysis::Stale), Decision::Blackout);
        // Fresh inference that finds nothing is still fresh: no blackout.
        assert!(matches!(
            fc.decide(4, Analysis::Fresh(vec![])),
            Decision::Mask { .. }
        ));
    }

    #[test]
    fn unanalyzed_frames_are_blacked_out_unless_opted_in() {
        let mut fc = FailClosed::new(policy(5, 5));
        assert_eq!(fc.decide(0, Analysis::Unanalyzed), Decision::Blackout);
        // Even right after a fresh frame: an unanalyzed frame is not covered by held masks.
        fc.decide(1, Analysis::Fresh(vec![sure(face(0.3))]));
        assert_eq!(fc.decide(2, Analysis::Unanalyzed), Decision::Blackout);
        let mut open = FailClosed::new(Policy {
            allow_unanalyzed: true,
            ..policy(5, 5)
        });
        assert_eq!(open.decide(0, Analysis::Unanalyzed), Decision::PassUnmasked);
    }

    const MS: u64 = 1_000_000;

    fn at(frame: u64, ms: u64) -> At {
        At {
            frame,
            time: Some(ms * MS),
        }
    }

    #[test]
    fn time_limits_mean_the_same_at_5_and_at_60_fps() {
        // Hold 400 ms, stale 250 ms; the frame counts (1 and 1) would say otherwise at 60 fps.
        let timed = Policy {
            hold_time: Some(400 * MS),
            stale_time: Some(250 * MS),
            ..policy(1, 1)
        };
        for interval in [200_u64, 1000 / 60] {
            let mut fc = FailClosed::new(timed);
            fc.decide_at(at(0, 0), Analysis::Fresh(vec![sure(face(0.5))]));
            // Missed by the detector: held until 400 ms after the sighting, released after.
            let mut f = 1;
            while f * interval <= 400 {
                let boxes = masks(fc.decide_at(at(f, f * interval), Analysis::Fresh(vec![])));
                assert_eq!(boxes.len(), 1, "{interval} ms/frame, frame {f}");
                f += 1;
            }
            let boxes = masks(fc.decide_at(at(f, f * interval), Analysis::Fresh(vec![])));
            assert!(
                boxes.is_empty(),
                "{interval} ms/frame: released after 400 ms"
            );
            // Stale frames are covered up to 250 ms after the last fresh one, then blacked out.
            let mut fc = FailClosed::new(timed);
            fc.decide_at(at(0, 0), Analysis::Fresh(vec![sure(face(0.5))]));
            let mut f = 1;
            while f * interval <= 250 {
                assert!(
                    matches!(
                        fc.decide_at(at(f, f * interval), Analysis::Stale),
                        Decision::Mask { .. }
                    ),
                    "{interval} ms/frame, frame {f}"
                );
                f += 1;
            }
            assert_eq!(
                fc.decide_at(at(f, f * interval), Analysis::Stale),
                Decision::Blackout
            );
        }
    }

    #[test]
    fn after_timestamps_reset_a_stale_frame_is_blacked_out_and_masks_are_held() {
        for stale_time in [Some(250 * MS), None] {
            let timed = Policy {
                hold_time: Some(400 * MS),
                stale_time,
                ..policy(1, 1)
            };
            let mut fc = FailClosed::new(timed);
            fc.decide_at(at(0, 30_000), Analysis::Fresh(vec![sure(face(0.5))]));
            // Control: 100 ms on, a stale frame is covered by the held mask.
            assert!(matches!(
                fc.decide_at(at(1, 30_100), Analysis::Stale),
                Decision::Mask { .. }
            ));
            // The source reconnected with timestamps from zero: nobody looked at this frame.
            assert_eq!(fc.decide_at(at(2, 0), Analysis::Stale), Decision::Blackout);
            // Fresh frames that miss the face: its hold starts again at the first of them
            // (40 ms), 400 ms by time — not 1 frame, and not the 30 s time went back.
            for (frame, ms, held) in [(3, 40, true), (4, 420, true), (5, 460, false)] {
                let boxes = masks(fc.decide_at(at(frame, ms), Analysis::Fresh(vec![])));
                assert_eq!(boxes.len(), usize::from(held), "{stale_time:?} {ms} ms");
            }
        }
    }

    #[test]
    fn frames_without_timestamps_fall_back_to_frame_counts() {
        let mut fc = FailClosed::new(Policy {
            hold_time: Some(10_000 * MS),
            ..policy(2, 1)
        });
        fc.decide(0, Analysis::Fresh(vec![sure(face(0.5))]));
        assert_eq!(masks(fc.decide(2, Analysis::Fresh(vec![]))).len(), 1);
        assert!(masks(fc.decide(3, Analysis::Fresh(vec![]))).is_empty());
    }

    #[test]
    fn two_faces_crossing_keep_separate_masks() {
        let mut fc = FailClosed::new(policy(3, 2));
        fc.decide(0, Analysis::Fresh(vec![sure(face(0.1)), sure(face(0.7))]));
        fc.decide(1, Analysis::Fresh(vec![sure(face(0.15)), sure(face(0.65))]));
        let boxes = masks(fc.decide(2, Analysis::Fresh(vec![sure(face(0.2))])));
        assert_eq!(boxes.len(), 2, "the missed face is held");
        assert!(
            (centre(&boxes[1]).0 - 0.65).abs() < 1e-9,
            "held at its predicted place: {boxes:?}"
        );
    }
}
