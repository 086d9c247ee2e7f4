//! Fail-closed mask bookkeeping: associate masks across frames, hold them through detector
//! blinks, and decide what a frame without fresh inference gets.
//!
//! Boxes are normalized `[x_min, y_min, x_max, y_max]`.

use veil_meta::roi::iou;

pub type BBox = [f64; 4];

fn centre(b: &BBox) -> (f64, f64) {
    ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
}

#[derive(Debug, Clone)]
struct Track {
    bbox: BBox,
    /// Centre motion per frame, from the last two sightings.
    velocity: (f64, f64),
    last_seen: u64,
}

impl Track {
    /// Where the mask is expected `frame` frames on: moved along its velocity and grown a
    /// little for every frame it is not seen, since the prediction gets less certain.
    fn predicted(&self, frame: u64, growth_per_frame: f64) -> BBox {
        let dt = frame.saturating_sub(self.last_seen) as f64;
        let (dx, dy) = (self.velocity.0 * dt, self.velocity.1 * dt);
        let g = 1.0 + growth_per_frame * dt;
        let (cx, cy) = centre(&self.bbox);
        let (hw, hh) = (
            (self.bbox[2] - self.bbox[0]) / 2.0 * g,
            (self.bbox[3] - self.bbox[1]) / 2.0 * g,
        );
        [cx + dx - hw, cy + dy - hh, cx + dx + hw, cy + dy + hh]
    }
}

/// What the element knows about a frame's analysis.
#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    /// A relevant detector ran on this frame; these are its boxes of the masked labels.
    Fresh(Vec<BBox>),
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

pub struct FailClosed {
    tracks: Vec<Track>,
    /// Frames a mask outlives its last detection.
    pub hold_frames: u32,
    /// Frames without fresh inference that held masks may cover before the frame is blacked out.
    pub stale_frames: u32,
    pub allow_unanalyzed: bool,
    pub growth_per_frame: f64,
    last_fresh: Option<u64>,
}

/// IoU above which a detection continues an existing mask.
const MATCH_IOU: f64 = 0.2;

impl FailClosed {
    pub fn new(hold_frames: u32, stale_frames: u32, allow_unanalyzed: bool) -> Self {
        FailClosed {
            tracks: Vec::new(),
            hold_frames,
            stale_frames,
            allow_unanalyzed,
            growth_per_frame: 0.05,
            last_fresh: None,
        }
    }

    pub fn decide(&mut self, frame: u64, analysis: Analysis) -> Decision {
        match analysis {
            Analysis::Fresh(boxes) => {
                self.last_fresh = Some(frame);
                Decision::Mask {
                    boxes: self.observe(frame, &boxes),
                    held_only: false,
                }
            }
            Analysis::Stale | Analysis::Unanalyzed => {
                let fresh_enough = matches!(analysis, Analysis::Stale)
                    && self
                        .last_fresh
                        .is_some_and(|f| frame.saturating_sub(f) <= self.stale_frames as u64);
                if fresh_enough {
                    Decision::Mask {
                        boxes: self.held(frame),
                        held_only: true,
                    }
                } else if self.allow_unanalyzed {
                    Decision::PassUnmasked
                } else {
                    Decision::Blackout
                }
            }
        }
    }

    /// Updates the tracks with this frame's detections; returns every mask for the frame.
    fn observe(&mut self, frame: u64, boxes: &[BBox]) -> Vec<BBox> {
        // Greedy association, best overlap first, against where each mask is expected now.
        let predicted: Vec<BBox> = self
            .tracks
            .iter()
            .map(|t| t.predicted(frame, 0.0))
            .collect();
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (ti, p) in predicted.iter().enumerate() {
            for (di, b) in boxes.iter().enumerate() {
                let v = iou(p, b);
                if v >= MATCH_IOU {
                    pairs.push((v, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut track_used, mut det_used) =
            (vec![false; self.tracks.len()], vec![false; boxes.len()]);
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let t = &mut self.tracks[ti];
            let dt = frame.saturating_sub(t.last_seen).max(1) as f64;
            let (ox, oy) = centre(&t.bbox);
            let (nx, ny) = centre(&boxes[di]);
            t.velocity = ((nx - ox) / dt, (ny - oy) / dt);
            t.bbox = boxes[di];
            t.last_seen = frame;
        }
        for (di, b) in boxes.iter().enumerate() {
            if !det_used[di] {
                self.tracks.push(Track {
                    bbox: *b,
                    velocity: (0.0, 0.0),
                    last_seen: frame,
                });
            }
        }
        let hold = self.hold_frames as u64;
        self.tracks
            .retain(|t| frame.saturating_sub(t.last_seen) <= hold);
        let mut masks = boxes.to_vec();
        masks.extend(
            self.tracks
                .iter()
                .filter(|t| t.last_seen != frame)
                .map(|t| t.predicted(frame, self.growth_per_frame)),
        );
        masks
    }

    /// Masks for a frame without fresh inference: every held track, predicted.
    fn held(&self, frame: u64) -> Vec<BBox> {
        self.tracks
            .iter()
            .map(|t| t.predicted(frame, self.growth_per_frame))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f64) -> BBox {
        [x, 0.2, x + 0.1, 0.4]
    }

    #[test]
    fn a_blinking_face_stays_masked_and_moves_on() {
        let mut fc = FailClosed::new(3, 2, false);
        fc.decide(0, Analysis::Fresh(vec![face(0.10)]));
        fc.decide(1, Analysis::Fresh(vec![face(0.12)]));
        // The detector blinks for two frames: the mask is held, moved along (+0.02/frame).
        for f in 2..=3 {
            let Decision::Mask {
                boxes,
                held_only: false,
            } = fc.decide(f, Analysis::Fresh(vec![]))
            else {
                panic!()
            };
            assert_eq!(boxes.len(), 1);
            let expected_centre = 0.12 + 0.05 + 0.02 * (f - 1) as f64;
            assert!(
                (centre(&boxes[0]).0 - expected_centre).abs() < 1e-9,
                "frame {f}: {boxes:?}"
            );
            assert!(boxes[0][2] - boxes[0][0] > 0.1, "held masks grow");
        }
        // It is found again and continues the same mask.
        fc.decide(4, Analysis::Fresh(vec![face(0.18)]));
        assert_eq!(fc.tracks.len(), 1);
        // Gone for longer than hold-frames: released.
        for f in 5..=8 {
            fc.decide(f, Analysis::Fresh(vec![]));
        }
        assert_eq!(
            fc.decide(9, Analysis::Fresh(vec![])),
            Decision::Mask {
                boxes: vec![],
                held_only: false
            }
        );
    }

    #[test]
    fn frames_without_fresh_inference_hold_then_black_out() {
        let mut fc = FailClosed::new(10, 2, false);
        fc.decide(0, Analysis::Fresh(vec![face(0.5)]));
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
        let mut fc = FailClosed::new(5, 5, false);
        assert_eq!(fc.decide(0, Analysis::Unanalyzed), Decision::Blackout);
        // Even right after a fresh frame: an unanalyzed frame is not covered by held masks.
        fc.decide(1, Analysis::Fresh(vec![face(0.3)]));
        assert_eq!(fc.decide(2, Analysis::Unanalyzed), Decision::Blackout);
        let mut open = FailClosed::new(5, 5, true);
        assert_eq!(open.decide(0, Analysis::Unanalyzed), Decision::PassUnmasked);
    }

    #[test]
    fn two_faces_crossing_keep_separate_masks() {
        let mut fc = FailClosed::new(3, 2, false);
        fc.decide(0, Analysis::Fresh(vec![face(0.1), face(0.7)]));
        fc.decide(1, Analysis::Fresh(vec![face(0.15), face(0.65)]));
        let Decision::Mask { boxes, .. } = fc.decide(2, Analysis::Fresh(vec![face(0.2)])) else {
            panic!()
        };
        assert_eq!(boxes.len(), 2, "the missed face is held");
        assert!(
            (centre(&boxes[1]).0 - 0.65).abs() < 1e-9,
            "held at its predicted place: {boxes:?}"
        );
    }
}
