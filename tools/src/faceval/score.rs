// SPDX-License-Identifier: MIT OR Apache-2.0
//! Scoring an anonymized clip against its ground truth: which face instances leaked, and how
//! much of the frame away from faces was changed (over-masking).
//!
//! **Leak.** A face instance leaks when its face is still recognisable in the output: its
//! detail survived, or a detector finds it again.
//! - *Detail retained*: the fine detail of the inner square (luma minus its local mean over a
//!   3×3 or 5×5 window, `hp`) projected onto the original's: `β = Σ hp_out·hp_orig / Σ hp_orig²`.
//!   Re-encoding an untouched face keeps β near 1; blur, pixelation and solid masks take it
//!   near 0. The face leaks when β ≥ 0.5 over its visible inner square, or over any visible
//!   quadrant of it (a mask that lags behind a moving face leaves a quadrant bare).
//! - *Re-detected*: CenterFace at threshold 0.5, run on the output at full size, finds a face
//!   over it (IoU ≥ 0.3 with its box, or a box of similar size centred on it).
//!
//! An instance is judged only when at least 40% of its inner square is visible and the original
//! holds detail there (hp energy ≥ 1 level²): a face that is mostly hidden, or a frame that is
//! nearly black, shows nothing to recognise. Instances not judged are counted and reported.
//!
//! **Over-mask.** Over every frame, the share of pixels outside all faces' head zones (the face
//! box grown ×2 about its centre) in 8×8 blocks whose mean absolute luma change exceeds 12
//! levels — coding noise stays well below that, any mask well above it.

use veil_meta::roi::iou;

use super::scene::FaceTruth;

/// β at or above which detail counts as retained.
pub const RETAINED: f64 = 0.5;
/// Minimum visible share of the inner square for an instance to be judged.
pub const MIN_VISIBLE: f64 = 0.4;
/// Minimum detail energy of the original's inner square (levels²).
pub const MIN_ENERGY: f64 = 1.0;
/// Block change (mean absolute luma difference) that counts as masked.
pub const BLOCK_CHANGE: f32 = 12.0;

/// A luma plane, 8 bits per pixel, rows without padding.
pub struct Luma<'a> {
    pub data: &'a [u8],
    pub w: u32,
    pub h: u32,
}

impl Luma<'_> {
    fn at(&self, x: i64, y: i64) -> f32 {
        let x = x.clamp(0, self.w as i64 - 1) as u32;
        let y = y.clamp(0, self.h as i64 - 1) as u32;
        self.data[(y * self.w + x) as usize] as f32
    }

    /// The pixel minus the mean of its `(2r+1)²` neighbourhood.
    fn high_pass(&self, x: i64, y: i64, r: i64) -> f32 {
        let mut sum = 0.0;
        for dy in -r..=r {
            for dx in -r..=r {
                sum += self.at(x + dx, y + dy);
            }
        }
        self.at(x, y) - sum / ((2 * r + 1) * (2 * r + 1)) as f32
    }
}

/// How one face instance fared.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceResult {
    pub frame: u32,
    pub id: usize,
    pub width: f64,
    /// Visible enough and detailed enough to be judged.
    pub judged: bool,
    /// Detail retained (β over the whole inner square, and the largest quadrant β).
    pub retained: f64,
    pub retained_quadrant: f64,
    pub unmasked: bool,
    pub redetected: bool,
}

impl FaceResult {
    pub fn leaked(&self) -> bool {
        self.judged && (self.unmasked || self.redetected)
    }
}

#[derive(Default, Clone, Copy)]
struct Projection {
    cross: f64,
    energy: f64,
    n: f64,
}

impl Projection {
    fn beta(&self) -> f64 {
        if self.energy <= 0.0 {
            0.0
        } else {
            self.cross / self.energy
        }
    }
    fn mean_energy(&self) -> f64 {
        self.energy / self.n.max(1.0)
    }
}

/// Whether detection `d` (pixels) is the face `t`.
pub fn same_face(d: &[f64; 4], t: &FaceTruth) -> bool {
    if iou(d, &t.bbox) >= 0.3 {
        return true;
    }
    let (cx, cy) = ((d[0] + d[2]) / 2.0, (d[1] + d[3]) / 2.0);
    let dist = ((cx - t.centre.0).powi(2) + (cy - t.centre.1).powi(2)).sqrt();
    let ratio = (d[2] - d[0]) / t.width;
    dist <= 0.35 * t.width && (0.5..=2.0).contains(&ratio)
}

/// Judges one face instance: `orig` is the clip as encoded, `out` the anonymized output,
/// `detections` what the re-detection found on `out` (pixel boxes).
pub fn judge_face(
    frame: u32,
    t: &FaceTruth,
    orig: &Luma,
    out: &Luma,
    detections: &[[f64; 4]],
) -> FaceResult {
    let side = 2.0 * t.inner;
    let r = if side < 24.0 { 1 } else { 2 };
    let mut whole = Projection::default();
    let mut quads = [Projection::default(); 4];
    let x0 = (t.centre.0 - t.inner).floor() as i64;
    let y0 = (t.centre.1 - t.inner).floor() as i64;
    let x1 = (t.centre.0 + t.inner).ceil() as i64;
    let y1 = (t.centre.1 + t.inner).ceil() as i64;
    for y in y0.max(0)..y1.min(orig.h as i64) {
        for x in x0.max(0)..x1.min(orig.w as i64) {
            let cx = (((x as f64 + 0.5 - (t.centre.0 - t.inner)) / side) * 8.0).floor();
            let cy = (((y as f64 + 0.5 - (t.centre.1 - t.inner)) / side) * 8.0).floor();
            if !(0.0..8.0).contains(&cx) || !(0.0..8.0).contains(&cy) {
                continue;
            }
            let (cx, cy) = (cx as u32, cy as u32);
            if t.cells & (1u64 << (8 * cy + cx)) == 0 {
                continue;
            }
            let (a, b) = (orig.high_pass(x, y, r), out.high_pass(x, y, r));
            let q = (cy / 4 * 2 + cx / 4) as usize;
            for p in [&mut whole, &mut quads[q]] {
                p.cross += (a * b) as f64;
                p.energy += (a * a) as f64;
                p.n += 1.0;
            }
        }
    }
    let judged = t.visible_fraction() >= MIN_VISIBLE && whole.mean_energy() >= MIN_ENERGY;
    let retained = whole.beta();
    // Quadrants are judged on faces large enough for a quadrant to hold a feature.
    let retained_quadrant = if side >= 16.0 {
        quads
            .iter()
            .filter(|q| q.n >= 0.12 * side * side && q.mean_energy() >= MIN_ENERGY)
            .map(Projection::beta)
            .fold(0.0, f64::max)
    } else {
        0.0
    };
    FaceResult {
        frame,
        id: t.id,
        width: t.width,
        judged,
        retained,
        retained_quadrant,
        unmasked: retained >= RETAINED || retained_quadrant >= RETAINED,
        redetected: detections.iter().any(|d| same_face(d, t)),
    }
}

/// `(changed, total)` pixels outside the faces' head zones on one frame.
pub fn overmask(orig: &Luma, out: &Luma, faces: &[FaceTruth]) -> (u64, u64) {
    let zones: Vec<[f64; 4]> = faces
        .iter()
        .map(|t| {
            let (cx, cy) = ((t.bbox[0] + t.bbox[2]) / 2.0, (t.bbox[1] + t.bbox[3]) / 2.0);
            let (hw, hh) = (t.bbox[2] - t.bbox[0], t.bbox[3] - t.bbox[1]);
            [cx - hw, cy - hh, cx + hw, cy + hh]
        })
        .collect();
    let in_zone = |x: u32, y: u32| {
        let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
        zones
            .iter()
            .any(|z| px >= z[0] && px < z[2] && py >= z[1] && py < z[3])
    };
    let (mut changed, mut total) = (0u64, 0u64);
    for by in (0..orig.h).step_by(8) {
        for bx in (0..orig.w).step_by(8) {
            let (mut diff, mut n, mut outside) = (0f32, 0u32, 0u64);
            for y in by..(by + 8).min(orig.h) {
                for x in bx..(bx + 8).min(orig.w) {
                    let i = (y * orig.w + x) as usize;
                    diff += (orig.data[i] as f32 - out.data[i] as f32).abs();
                    n += 1;
                    if !in_zone(x, y) {
                        outside += 1;
                    }
                }
            }
            total += outside;
            if diff / n as f32 > BLOCK_CHANGE {
                changed += outside;
            }
        }
    }
    (changed, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured "face" on a flat background.
    fn textured(w: u32, h: u32) -> Vec<u8> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if (20..60).contains(&x) && (20..60).contains(&y) {
                    100 + ((x * 7 + y * 13) % 17) as u8 * 6
                } else {
                    90
                }
            })
            .collect()
    }

    fn truth() -> FaceTruth {
        FaceTruth {
            id: 0,
            bbox: [20.0, 20.0, 60.0, 60.0],
            centre: (40.0, 40.0),
            width: 40.0,
            inner: 12.0,
            cells: u64::MAX,
        }
    }

    #[test]
    fn untouched_faces_leak_masked_faces_do_not() {
        let orig = textured(80, 80);
        let o = Luma {
            data: &orig,
            w: 80,
            h: 80,
        };
        // Untouched but for mild noise: detail retained.
        let noisy: Vec<u8> = orig
            .iter()
            .enumerate()
            .map(|(i, v)| v + ((i * 31) % 5) as u8 - 2)
            .collect();
        let r = judge_face(
            0,
            &truth(),
            &o,
            &Luma {
                data: &noisy,
                w: 80,
                h: 80,
            },
            &[],
        );
        assert!(r.judged && r.unmasked && r.leaked(), "{r:?}");
        assert!(r.retained > 0.8);
        // Solid mask: nothing retained.
        let mut solid = orig.clone();
        for y in 14..66 {
            for x in 14..66 {
                solid[y * 80 + x] = 0;
            }
        }
        let r = judge_face(
            0,
            &truth(),
            &o,
            &Luma {
                data: &solid,
                w: 80,
                h: 80,
            },
            &[],
        );
        assert!(r.judged && !r.leaked(), "{r:?}");
        // Half masked: the bare quadrants give it away.
        let mut half = orig.clone();
        for y in 14..66 {
            for x in 14..40 {
                half[y * 80 + x] = 0;
            }
        }
        let r = judge_face(
            0,
            &truth(),
            &o,
            &Luma {
                data: &half,
                w: 80,
                h: 80,
            },
            &[],
        );
        assert!(r.leaked() && r.retained_quadrant > 0.8, "{r:?}");
        // Re-detected on a masked face still leaks.
        let r = judge_face(
            0,
            &truth(),
            &o,
            &Luma {
                data: &solid,
                w: 80,
                h: 80,
            },
            &[[22.0, 18.0, 61.0, 63.0]],
        );
        assert!(r.redetected && r.leaked());
    }

    #[test]
    fn hidden_or_featureless_faces_are_not_judged() {
        let flat = vec![90u8; 80 * 80];
        let l = Luma {
            data: &flat,
            w: 80,
            h: 80,
        };
        assert!(!judge_face(0, &truth(), &l, &l, &[]).judged);
        let orig = textured(80, 80);
        let o = Luma {
            data: &orig,
            w: 80,
            h: 80,
        };
        let hidden = FaceTruth {
            cells: 0xff,
            ..truth()
        };
        assert!(!judge_face(0, &hidden, &o, &o, &[]).judged);
    }

    #[test]
    fn overmask_counts_changed_blocks_away_from_faces() {
        let orig = textured(80, 80);
        let o = Luma {
            data: &orig,
            w: 80,
            h: 80,
        };
        assert_eq!(overmask(&o, &o, &[truth()]).0, 0);
        // Change everything: the head zone (0..80 clipped: the whole frame here) is excluded.
        let black = vec![0u8; 80 * 80];
        let b = Luma {
            data: &black,
            w: 80,
            h: 80,
        };
        let (changed, total) = overmask(&o, &b, &[]);
        assert_eq!((changed, total), (6400, 6400));
        let small = FaceTruth {
            bbox: [30.0, 30.0, 50.0, 50.0],
            ..truth()
        };
        let (changed, total) = overmask(&o, &b, &[small]);
        assert_eq!(total, 6400 - 40 * 40);
        assert_eq!(changed, total);
    }

    #[test]
    fn detections_match_faces_by_overlap_or_centre() {
        let t = truth();
        assert!(same_face(&[20.0, 20.0, 60.0, 60.0], &t));
        assert!(same_face(&[25.0, 22.0, 55.0, 58.0], &t));
        assert!(!same_face(&[60.0, 60.0, 80.0, 80.0], &t));
        assert!(!same_face(&[38.0, 38.0, 42.0, 42.0], &t), "far too small");
    }
}
