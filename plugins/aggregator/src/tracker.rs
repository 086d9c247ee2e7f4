// SPDX-License-Identifier: MIT OR Apache-2.0
//! Motion-only multi-object tracking: a constant-velocity Kalman filter per box coordinate and
//! ByteTrack-style association (high-score detections first, then low-score ones to the tracks
//! still unmatched). No appearance features; ids are small integers, reset per run.

/// `[x_min, y_min, x_max, y_max]`, any consistent unit (the element uses normalized coordinates).
pub type BBox = [f64; 4];

pub use veil_meta::roi::iou;

/// A 1-D constant-velocity Kalman filter (state: position, velocity).
#[derive(Debug, Clone, Copy)]
struct Kf1 {
    x: f64,
    v: f64,
    // Covariance [[p00, p01], [p01, p11]].
    p00: f64,
    p01: f64,
    p11: f64,
}

impl Kf1 {
    fn new(x: f64, scale: f64) -> Self {
        Kf1 {
            x,
            v: 0.0,
            p00: scale * scale,
            p01: 0.0,
            p11: 10.0 * scale * scale,
        }
    }
    fn predict(&mut self, q: f64) {
        self.x += self.v;
        // P = F P Fᵀ + Q with F = [[1, 1], [0, 1]].
        self.p00 += 2.0 * self.p01 + self.p11 + q;
        self.p01 += self.p11;
        self.p11 += q;
    }
    fn update(&mut self, z: f64, r: f64) {
        let s = self.p00 + r;
        let (k0, k1) = (self.p00 / s, self.p01 / s);
        let y = z - self.x;
        self.x += k0 * y;
        self.v += k1 * y;
        let (p00, p01, p11) = (self.p00, self.p01, self.p11);
        self.p00 = (1.0 - k0) * p00;
        self.p01 = (1.0 - k0) * p01;
        self.p11 = p11 - k1 * p01;
    }
}

#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    /// Filters for centre x, centre y, width, height.
    kf: [Kf1; 4],
    pub hits: u32,
    pub misses: u32,
    pub confirmed: bool,
    /// Index of the detection matched this frame, if any.
    pub matched: Option<usize>,
    /// The last detection this track absorbed (where it was last seen).
    last_box: BBox,
}

impl Track {
    pub fn bbox(&self) -> BBox {
        let [cx, cy, w, h] = self.kf.map(|k| k.x);
        let (w, h) = (w.max(1e-6), h.max(1e-6));
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    /// Detections at or above this score start tracks and are matched first.
    pub high_score: f64,
    /// Detections between this and `high_score` only continue existing tracks.
    pub low_score: f64,
    pub match_iou: f64,
    /// Frames a track survives without a match.
    pub max_misses: u32,
    /// Matches before a track is confirmed (counted).
    pub min_hits: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            high_score: 0.5,
            low_score: 0.1,
            match_iou: 0.2,
            max_misses: 30,
            min_hits: 3,
        }
    }
}

pub struct Tracker {
    pub config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    pairs: Vec<(f64, usize, usize)>,
}

/// Intersection over the smaller box's area: 1 when one box lies inside the other.
fn overlap_of_smaller(a: &BBox, b: &BBox) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let smaller = ((a[2] - a[0]) * (a[3] - a[1])).min((b[2] - b[0]) * (b[3] - b[1]));
    if smaller <= 0.0 { 0.0 } else { w * h / smaller }
}

fn centre_distance(a: &BBox, b: &BBox) -> f64 {
    let (ax, ay) = ((a[0] + a[2]) / 2.0, (a[1] + a[3]) / 2.0);
    let (bx, by) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt()
}

fn to_cxcywh(b: &BBox) -> [f64; 4] {
    [
        (b[0] + b[2]) / 2.0,
        (b[1] + b[3]) / 2.0,
        b[2] - b[0],
        b[3] - b[1],
    ]
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            tracks: Vec::new(),
            next_id: 1,
            pairs: Vec::new(),
        }
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Advances one frame. Returns, per detection, the id of the confirmed track it belongs to
    /// (`None` for detections not (yet) part of a confirmed track), and the ids of the tracks
    /// that ended on this frame.
    pub fn update(&mut self, boxes: &[BBox], scores: &[f64]) -> (Vec<Option<u64>>, Vec<u64>) {
        for t in &mut self.tracks {
            let size = t.kf[2].x.max(t.kf[3].x);
            let q = (0.05 * size).powi(2);
            for k in &mut t.kf {
                k.predict(q);
            }
            t.matched = None;
        }
        let predicted: Vec<BBox> = self.tracks.iter().map(Track::bbox).collect();
        let mut det_used = vec![false; boxes.len()];
        let mut track_used = vec![false; self.tracks.len()];
        let (high, low) = (self.config.high_score, self.config.low_score);
        // First pass: high-score detections against every track; second: low-score ones
        // against the tracks left (ByteTrack's recovery of occluded, low-confidence objects).
        for (pass_min, pass_max) in [(high, f64::INFINITY), (low, high)] {
            self.pairs.clear();
            for (ti, p) in predicted.iter().enumerate() {
                if track_used[ti] {
                    continue;
                }
                for (di, b) in boxes.iter().enumerate() {
                    let s = scores[di];
                    if det_used[di] || s < pass_min || s >= pass_max {
                        continue;
                    }
                    let v = iou(p, b);
                    if v >= self.config.match_iou {
                        self.pairs.push((v, ti, di));
                    }
                }
            }
            self.pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            self.absorb_pairs(boxes, &mut track_used, &mut det_used);
        }
        // Third pass, before new tracks are born: a confirmed track lost for a few frames (an
        // occlusion, a detector blink) whose prediction drifted away from where the person
        // reappears still takes a high-score detection within one box size of its predicted or
        // last seen centre, of a similar size. Without it every occlusion is an identity switch.
        self.pairs.clear();
        for (ti, t) in self.tracks.iter().enumerate() {
            if track_used[ti] || !t.confirmed || t.misses == 0 {
                continue;
            }
            let size = (t.last_box[2] - t.last_box[0]).max(t.last_box[3] - t.last_box[1]);
            for (di, b) in boxes.iter().enumerate() {
                if det_used[di] || scores[di] < high {
                    continue;
                }
                let height_ratio = (b[3] - b[1]) / (t.last_box[3] - t.last_box[1]).max(1e-9);
                if !(0.6..=1.6).contains(&height_ratio) {
                    continue;
                }
                let distance = centre_distance(&predicted[ti], b)
                    .min(centre_distance(&t.last_box, b))
                    / size.max(1e-9);
                if distance < 1.0 {
                    // Closer is better: sort descending on the negated distance.
                    self.pairs.push((-distance, ti, di));
                }
            }
        }
        self.pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        self.absorb_pairs(boxes, &mut track_used, &mut det_used);
        // Births. A box lying mostly inside a box that a track took this frame is the same
        // person seen twice (a partial and a full-body box that NMS kept apart), not a newcomer:
        // such duplicates would otherwise grow into a second track and take over the first.
        let taken: Vec<BBox> = self
            .tracks
            .iter()
            .filter_map(|t| t.matched.map(|di| boxes[di]))
            .collect();
        for (di, b) in boxes.iter().enumerate() {
            if !det_used[di]
                && scores[di] >= high
                && !taken.iter().any(|t| overlap_of_smaller(t, b) >= 0.8)
            {
                let z = to_cxcywh(b);
                let scale = z[2].max(z[3]);
                self.tracks.push(Track {
                    id: 0,
                    kf: z.map(|v| Kf1::new(v, 0.1 * scale)),
                    hits: 1,
                    misses: 0,
                    confirmed: self.config.min_hits <= 1,
                    matched: Some(di),
                    last_box: *b,
                });
            }
        }
        let mut ended = Vec::new();
        let max_misses = self.config.max_misses;
        for t in &mut self.tracks {
            if t.matched.is_none() {
                t.misses += 1;
            }
        }
        self.tracks.retain(|t| {
            // Tentative tracks die on their first miss; confirmed ones after max_misses.
            let dead = if t.confirmed {
                t.misses > max_misses
            } else {
                t.misses > 0
            };
            if dead && t.id != 0 {
                ended.push(t.id);
            }
            !dead
        });
        let mut ids = vec![None; boxes.len()];
        for t in &mut self.tracks {
            if t.confirmed && t.id == 0 {
                t.id = self.next_id;
                self.next_id += 1;
            }
            if let (Some(di), true) = (t.matched, t.confirmed) {
                ids[di] = Some(t.id);
            }
        }
        (ids, ended)
    }

    /// Updates tracks with the detections of `self.pairs`, best pair first, each track and
    /// detection used once.
    fn absorb_pairs(&mut self, boxes: &[BBox], track_used: &mut [bool], det_used: &mut [bool]) {
        for &(_, ti, di) in &self.pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let t = &mut self.tracks[ti];
            let z = to_cxcywh(&boxes[di]);
            let r = (0.05 * z[2].max(z[3])).powi(2);
            for (k, zi) in t.kf.iter_mut().zip(z) {
                k.update(zi, r);
            }
            t.hits += 1;
            t.misses = 0;
            t.matched = Some(di);
            t.last_box = boxes[di];
            if t.hits >= self.config.min_hits {
                t.confirmed = true;
            }
        }
    }

    /// Ends every track (EOS); returns their ids.
    pub fn finish(&mut self) -> Vec<u64> {
        self.tracks
            .drain(..)
            .filter(|t| t.id != 0)
            .map(|t| t.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(cx: f64, cy: f64) -> BBox {
        [cx - 0.05, cy - 0.1, cx + 0.05, cy + 0.1]
    }

    #[test]
    fn a_track_that_blinks_for_two_frames_stays_one_track() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut ids = Vec::new();
        for f in 0..20 {
            let x = 0.1 + 0.01 * f as f64;
            let dets: Vec<BBox> = if f == 8 || f == 9 {
                vec![]
            } else {
                vec![boxed(x, 0.5)]
            };
            let scores = vec![0.9; dets.len()];
            let (got, _) = t.update(&dets, &scores);
            ids.extend(got.into_iter().flatten());
        }
        ids.dedup();
        assert_eq!(ids, vec![1], "one id through the blink");
    }

    #[test]
    fn two_people_crossing_keep_their_ids() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut first_left = None;
        for f in 0..40 {
            // A walks right, B walks left; they cross at frame 20 at x = 0.5 (B slightly lower).
            let a = boxed(0.1 + 0.02 * f as f64, 0.5);
            let b = boxed(0.9 - 0.02 * f as f64, 0.53);
            let (ids, _) = t.update(&[a, b], &[0.9, 0.8]);
            if f == 5 {
                first_left = ids[0];
            }
            if f > 5 {
                assert_eq!(ids[0], first_left, "frame {f}: A changed id");
                assert_ne!(ids[1], first_left, "frame {f}: B took A's id");
            }
        }
        assert_eq!(t.tracks().len(), 2);
    }

    #[test]
    fn a_person_reappearing_after_an_occlusion_keeps_their_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut last = None;
        // Walks right for 10 frames, stops behind a post (10 frames unseen), reappears where they
        // stopped: the constant-velocity prediction has drifted past them (IoU ≈ 0).
        for f in 0..10 {
            let (ids, _) = t.update(&[boxed(0.2 + 0.02 * f as f64, 0.5)], &[0.9]);
            last = ids[0];
        }
        for _ in 0..10 {
            t.update(&[], &[]);
        }
        let (ids, _) = t.update(&[boxed(0.40, 0.5)], &[0.9]);
        assert_eq!(ids[0], last, "re-associated, not a new person");
        // Somebody else, far away, is not taken for them.
        let (ids, _) = t.update(&[boxed(0.40, 0.5), boxed(0.9, 0.2)], &[0.9, 0.9]);
        assert_eq!(ids[0], last);
        assert_ne!(ids[1], last);
    }

    #[test]
    fn a_second_box_on_a_tracked_person_does_not_become_a_second_person() {
        let mut t = Tracker::new(TrackerConfig::default());
        for f in 0..5 {
            t.update(&[boxed(0.3 + 0.01 * f as f64, 0.5)], &[0.9]);
        }
        // From now on the detector also reports the upper half of the same person.
        for f in 5..10 {
            let full = boxed(0.3 + 0.01 * f as f64, 0.5);
            let upper = [full[0], full[1], full[2], (full[1] + full[3]) / 2.0];
            let (ids, _) = t.update(&[full, upper], &[0.9, 0.8]);
            assert_eq!(ids, vec![Some(1), None], "frame {f}");
        }
        assert_eq!(t.tracks().len(), 1);
        // Two people side by side (overlapping a little) are still two people.
        let mut t = Tracker::new(TrackerConfig::default());
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids = t
                .update(&[boxed(0.5, 0.5), boxed(0.58, 0.5)], &[0.9, 0.9])
                .0;
        }
        assert!(
            ids[0].is_some() && ids[1].is_some() && ids[0] != ids[1],
            "{ids:?}"
        );
    }

    #[test]
    fn low_score_detections_continue_tracks_but_do_not_start_them() {
        let mut t = Tracker::new(TrackerConfig::default());
        for f in 0..5 {
            t.update(&[boxed(0.3 + 0.01 * f as f64, 0.5)], &[0.9]);
        }
        let (ids, _) = t.update(&[boxed(0.35, 0.5), boxed(0.8, 0.2)], &[0.3, 0.3]);
        assert_eq!(ids[0], Some(1), "a low-score detection continues the track");
        assert_eq!(ids[1], None, "and never starts one");
        assert_eq!(t.tracks().len(), 1);
    }

    #[test]
    fn tracks_end_after_max_misses() {
        let mut t = Tracker::new(TrackerConfig {
            max_misses: 3,
            ..Default::default()
        });
        for _ in 0..3 {
            t.update(&[boxed(0.5, 0.5)], &[0.9]);
        }
        let mut ended = Vec::new();
        for _ in 0..4 {
            ended.extend(t.update(&[], &[]).1);
        }
        assert_eq!(ended, vec![1]);
    }
}
