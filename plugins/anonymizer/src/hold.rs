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
    last_fresh: Option<u64>,
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

    pub fn decide(&mut self, frame: u64, analysis: Analysis) -> Decision {
        match analysis {
            Analysis::Fresh(candidates) => {
                self.last_fresh = Some(frame);
                Decision::Mask {
                    boxes: self.observe(frame, &candidates),
                    held_only: false,
                }
            }
            Analysis::Stale | Analysis::Unanalyzed => {
                let fresh_enough = matches!(analysis, Analysis::Stale)
                    && self.last_fresh.is_some_and(|f| {
                        frame.saturating_sub(f) <= self.policy.stale_frames as u64
                    });
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
    fn observe(&mut self, frame: u64, candidates: &[Candidate]) -> Vec<BBox> {
        let p = self.policy;
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
                    sightings: 1,
                });
            }
        }
        let hold = p.hold_frames as u64;
        self.tracks
            .retain(|t| frame.saturating_sub(t.last_seen) <= hold);
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
