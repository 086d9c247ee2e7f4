// SPDX-License-Identifier: MIT OR Apache-2.0
//! Face-size-driven inference: which regions of a frame go through the model at which scale.
//!
//! A detector sees faces down to a smallest size *at its input* (CenterFace: about 20 px, see
//! `docs/elements/anonymizer.md`). A whole-frame pass letterboxed to the inference size therefore misses
//! faces smaller than `smallest / scale` frame pixels. When a `min-face-size` (in frame
//! pixels) asks for smaller faces, the frame is also cut into overlapping tiles run at the scale
//! that makes a face of `min-face-size` as large as the detector's smallest — the way SAHI-style
//! sliced inference does it. Neighbouring tiles overlap by the largest face the tiles must
//! find (the faces the whole-frame pass would miss), so every such face lies whole in at least
//! one tile; a face cut by a tile's border there is merged into the whole one ([`merge`]), so
//! it is found once.

/// One model run: a region of the frame (pixels, even-aligned) resized into a model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub model_w: u32,
    pub model_h: u32,
}

/// The model runs that cover one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The whole frame, letterboxed into the inference size.
    pub full: Pass,
    /// Tiles at the finer scale (empty when the whole-frame pass already sees the smallest
    /// faces asked for).
    pub tiles: Vec<Pass>,
}

/// Largest tile side in model pixels when the tile size is chosen to fit the frame: CenterFace
/// at 1280×736 takes about 140 ms on one core here; larger inputs cost in proportion and do not
/// find more.
pub const MAX_FIT_TILE: u32 = 1280;

impl Plan {
    /// Plans the runs for a `frame_w × frame_h` frame: `full` is the whole-frame model input,
    /// `min_face` the smallest face to find (frame pixels, 0: none beyond what `full` sees),
    /// `smallest` the detector's smallest face at its input, `tile` the model input of a tile
    /// (`None`: as few tiles as cover the frame, each at most [`MAX_FIT_TILE`] a side, sized to
    /// share the frame evenly), `max_scale` the largest magnification allowed (frame → model).
    pub fn new(
        frame_w: u32,
        frame_h: u32,
        full: (u32, u32),
        min_face: f64,
        smallest: f64,
        tile: Option<(u32, u32)>,
        max_scale: f64,
    ) -> Plan {
        let full_pass = Pass {
            x: 0,
            y: 0,
            w: frame_w,
            h: frame_h,
            model_w: full.0,
            model_h: full.1,
        };
        let full_scale = (full.0 as f64 / frame_w as f64).min(full.1 as f64 / frame_h as f64);
        let scale = if min_face > 0.0 {
            (smallest / min_face).min(max_scale)
        } else {
            0.0
        };
        if scale <= full_scale * 1.05 {
            return Plan {
                full: full_pass,
                tiles: Vec::new(),
            };
        }
        // The overlap: the largest face the whole-frame pass misses, plus a margin for the
        // detector's box being larger than the face (frame pixels).
        let overlap = 1.3 * smallest / full_scale;
        // Per axis: how many tiles, and how many frame pixels each spans.
        let axis_span = |len: u32, fixed: Option<u32>| -> (u32, f64) {
            let len_f = len as f64;
            match fixed {
                Some(model) => {
                    let span = model as f64 / scale;
                    let ov = overlap.min(span * 0.5);
                    let n = if span >= len_f {
                        1
                    } else {
                        ((len_f - ov) / (span - ov)).ceil().max(1.0) as u32
                    };
                    (n, span.min(len_f))
                }
                None => {
                    let max_span = MAX_FIT_TILE as f64 / scale;
                    let ov = overlap.min(max_span * 0.5);
                    let n = if max_span >= len_f {
                        1
                    } else {
                        ((len_f - ov) / (max_span - ov)).ceil().max(1.0) as u32
                    };
                    (n, ((len_f + (n - 1) as f64 * ov) / n as f64).min(len_f))
                }
            }
        };
        let (nx, span_x) = axis_span(frame_w, tile.map(|t| t.0));
        let (ny, span_y) = axis_span(frame_h, tile.map(|t| t.1));
        let round32 = |v: f64| ((v / 32.0).ceil() as u32 * 32).max(32);
        let (model_w, model_h) = match tile {
            Some(t) => t,
            None => (round32(span_x * scale), round32(span_y * scale)),
        };
        let starts = |len: u32, n: u32, span: f64| -> Vec<(u32, u32)> {
            let step = if n > 1 {
                (len as f64 - span) / (n - 1) as f64
            } else {
                0.0
            };
            (0..n)
                .map(|i| {
                    let start = ((i as f64 * step).round() as u32) & !1;
                    let end = ((start as f64 + span).round() as u32).min(len);
                    (start, end)
                })
                .collect()
        };
        let mut tiles = Vec::new();
        for &(y0, y1) in &starts(frame_h, ny, span_y) {
            for &(x0, x1) in &starts(frame_w, nx, span_x) {
                tiles.push(Pass {
                    x: x0,
                    y: y0,
                    w: x1 - x0,
                    h: y1 - y0,
                    model_w,
                    model_h,
                });
            }
        }
        Plan {
            full: full_pass,
            tiles,
        }
    }
}

/// The whole-frame pass when tiles look for the small faces: the frame fitted into 320 pixels
/// on its longer side (multiples of 32), enough for faces larger than the tiles see whole.
pub fn coarse_size(frame_w: u32, frame_h: u32) -> (u32, u32) {
    let scale = 320.0 / frame_w.max(frame_h).max(1) as f64;
    let round32 = |v: f64| ((v / 32.0).ceil() as u32 * 32).max(32);
    (
        round32(frame_w as f64 * scale),
        round32(frame_h as f64 * scale),
    )
}

/// A detection in frame pixels with its score (and anything else the caller keeps with it).
pub trait Boxed {
    fn bounds(&self) -> [f32; 4];
    fn score(&self) -> f32;
    fn class(&self) -> usize;
    fn set_bounds(&mut self, b: [f32; 4]);
}

impl Boxed for crate::decoders::RawDetection {
    fn bounds(&self) -> [f32; 4] {
        [self.x0, self.y0, self.x1, self.y1]
    }
    fn score(&self) -> f32 {
        self.score
    }
    fn class(&self) -> usize {
        self.class
    }
    fn set_bounds(&mut self, b: [f32; 4]) {
        [self.x0, self.y0, self.x1, self.y1] = b;
    }
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

fn intersection(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    w * h
}

/// Merges detections from overlapping runs: the best-scoring box of a class absorbs every box
/// that overlaps it above `iou_limit` (as non-maximum suppression) or lies mostly (≥ 60%)
/// inside it or around it — a face cut by a tile's border is the same face. The kept box grows
/// to the union of what it absorbed, so a mask built from it covers everything that was found.
pub fn merge<T: Boxed>(mut dets: Vec<T>, iou_limit: f32) -> Vec<T> {
    dets.sort_by(|a, b| b.score().total_cmp(&a.score()));
    let mut kept: Vec<T> = Vec::with_capacity(dets.len());
    for d in dets {
        let b = d.bounds();
        let absorbed_by = kept.iter_mut().find(|k| {
            if k.class() != d.class() {
                return false;
            }
            let kb = k.bounds();
            let inter = intersection(&kb, &b);
            let union = area(&kb) + area(&b) - inter;
            let iou = if union > 0.0 { inter / union } else { 0.0 };
            let smaller = area(&kb).min(area(&b));
            iou > iou_limit || (smaller > 0.0 && inter / smaller >= 0.6)
        });
        match absorbed_by {
            Some(k) => {
                let kb = k.bounds();
                k.set_bounds([
                    kb[0].min(b[0]),
                    kb[1].min(b[1]),
                    kb[2].max(b[2]),
                    kb[3].max(b[3]),
                ]);
            }
            None => kept.push(d),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct B([f32; 4], f32);
    impl Boxed for B {
        fn bounds(&self) -> [f32; 4] {
            self.0
        }
        fn score(&self) -> f32 {
            self.1
        }
        fn class(&self) -> usize {
            0
        }
        fn set_bounds(&mut self, b: [f32; 4]) {
            self.0 = b;
        }
    }

    #[test]
    fn no_tiles_when_the_whole_frame_pass_sees_the_smallest_faces() {
        // 1280x720 into 640x384: scale 0.5; 16 px detector minimum → 32 px faces seen.
        let p = Plan::new(1280, 720, (640, 384), 32.0, 16.0, Some((320, 320)), 2.0);
        assert!(p.tiles.is_empty());
        let p = Plan::new(1280, 720, (640, 384), 0.0, 16.0, None, 2.0);
        assert!(p.tiles.is_empty());
    }

    #[test]
    fn tiles_cover_the_frame_with_enough_overlap() {
        // 16 px faces at 720p: scale 1, 320x320 tiles.
        let p = Plan::new(1280, 720, (640, 384), 16.0, 16.0, Some((320, 320)), 2.0);
        assert!(!p.tiles.is_empty());
        let overlap = 1.3 * 16.0 / 0.5;
        for y in (0..720).step_by(7) {
            for x in (0..1280).step_by(7) {
                assert!(
                    p.tiles
                        .iter()
                        .any(|t| x >= t.x && x < t.x + t.w && y >= t.y && y < t.y + t.h),
                    "({x},{y}) uncovered"
                );
            }
        }
        // Any face up to the overlap in size lies whole inside some tile.
        let s = overlap as u32;
        for y in (0..720 - s).step_by(5) {
            for x in (0..1280 - s).step_by(5) {
                assert!(
                    p.tiles
                        .iter()
                        .any(|t| x >= t.x && x + s <= t.x + t.w && y >= t.y && y + s <= t.y + t.h),
                    "a {s} px face at ({x},{y}) is whole in no tile"
                );
            }
        }
        // Tiles start on the chroma grid and stay inside the frame.
        for t in &p.tiles {
            assert_eq!((t.x % 2, t.y % 2), (0, 0));
            assert!(t.x + t.w <= 1280 && t.y + t.h <= 720);
            assert_eq!((t.model_w, t.model_h), (320, 320));
        }
    }

    #[test]
    fn fitted_tiles_share_the_frame_evenly() {
        // 720p at full scale: one tile, the whole frame (rounded up to 32).
        let p = Plan::new(1280, 720, (640, 384), 16.0, 16.0, None, 2.0);
        assert_eq!(p.tiles.len(), 1);
        let t = p.tiles[0];
        assert_eq!((t.x, t.y, t.w, t.h), (0, 0, 1280, 720));
        assert_eq!((t.model_w, t.model_h), (1280, 736));
        // 4K at 0.8: several tiles of one size, each at most 1280 model pixels a side,
        // covering the frame with the overlap a missed face needs.
        let p = Plan::new(3840, 2160, (640, 384), 20.0, 16.0, None, 2.0);
        assert!(p.tiles.len() >= 6, "{:?}", p.tiles);
        let (mw, mh) = (p.tiles[0].model_w, p.tiles[0].model_h);
        assert!(mw <= 1280 + 31 && mh <= 1280 + 31);
        assert!(p.tiles.iter().all(|t| (t.model_w, t.model_h) == (mw, mh)));
        let overlap = (1.3 * 16.0 / (640.0 / 3840.0)) as u32;
        for y in (0..2160 - overlap).step_by(37) {
            for x in (0..3840 - overlap).step_by(37) {
                assert!(
                    p.tiles.iter().any(|t| x >= t.x
                        && x + overlap <= t.x + t.w
                        && y >= t.y
                        && y + overlap <= t.y + t.h),
                    "({x},{y})"
                );
            }
        }
    }

    #[test]
    fn the_coarse_pass_fits_the_longer_side_into_320() {
        assert_eq!(coarse_size(1280, 720), (320, 192));
        assert_eq!(coarse_size(720, 1280), (192, 320));
        assert_eq!(coarse_size(3840, 2160), (320, 192));
        assert_eq!(coarse_size(100, 50), (320, 160));
    }

    #[test]
    fn magnification_is_capped() {
        let capped = Plan::new(640, 360, (640, 384), 4.0, 16.0, Some((320, 320)), 2.0);
        let t = capped.tiles[0];
        assert_eq!((t.w, t.h), (160, 160));
    }

    #[test]
    fn a_face_across_a_tile_border_is_found_once() {
        // The left tile sees the whole face, the right one only its right part; the
        // whole-frame pass finds it too, a little offset.
        let whole = B([300.0, 100.0, 340.0, 150.0], 0.8);
        let cut = B([320.0, 102.0, 341.0, 149.0], 0.9);
        let coarse = B([298.0, 98.0, 343.0, 152.0], 0.6);
        let other = B([500.0, 100.0, 540.0, 150.0], 0.7);
        let merged = merge(vec![whole, cut, coarse, other.clone()], 0.3);
        assert_eq!(merged.len(), 2, "{merged:?}");
        let face = &merged[0];
        assert_eq!(face.1, 0.9);
        assert_eq!(
            face.0,
            [298.0, 98.0, 343.0, 152.0],
            "the union of all three"
        );
        assert_eq!(merged[1], other);
    }

    #[test]
    fn neighbouring_faces_stay_apart() {
        let a = B([100.0, 100.0, 140.0, 150.0], 0.9);
        let b = B([130.0, 100.0, 170.0, 150.0], 0.8);
        assert_eq!(merge(vec![a, b], 0.3).len(), 2);
    }
}
