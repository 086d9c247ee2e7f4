// SPDX-License-Identifier: MIT OR Apache-2.0
//! In-place pixel effects on one plane of a frame: blur, pixelate, solid fill, blackout.
//!
//! A plane is interleaved bytes (`channels` per pixel: 1 for Y/U/V planes, 2 for NV12's UV, 3 or
//! 4 for packed RGB) at `1/sub` of the frame resolution. Each channel is processed independently,
//! so the same code serves every format. Only pixels inside a [`Region`] are written.

use crate::region::Region;

pub struct Plane<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    /// Subsampling of this plane relative to the frame (1 or 2).
    pub sub: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// Blur with a radius of about `radius` plane pixels. Computed at reduced resolution
    /// (area downsampling by about radius/2, a small box blur, bilinear upsampling), so its cost
    /// does not grow with the radius.
    Blur { radius: u32 },
    /// Blocks of `block` frame pixels filled with their mean.
    Pixelate { block: u32 },
    /// Every channel set to the given value (per channel of this plane).
    Solid { value: [u8; 4] },
}

/// Reusable scratch memory.
#[derive(Default)]
pub struct Scratch {
    sums: Vec<u32>,
    small: Vec<u8>,
    tmp: Vec<u8>,
}

impl Plane<'_> {
    /// The region's rectangle in this plane's pixels, clipped.
    fn rect(&self, r: &Region) -> (u32, u32, u32, u32) {
        let s = self.sub;
        (
            (r.x0 / s).min(self.width),
            (r.y0 / s).min(self.height),
            r.x1.div_ceil(s).min(self.width),
            r.y1.div_ceil(s).min(self.height),
        )
    }

    /// Calls `write(y, x_start, row)` for every run of covered plane pixels of the region's
    /// rectangle; `y` and `x_start` are relative to the rectangle and `row` holds the run's
    /// bytes (`channels` per pixel) to overwrite.
    fn for_covered_runs(
        &mut self,
        r: &Region,
        rect: (u32, u32, u32, u32),
        mut write: impl FnMut(usize, usize, &mut [u8]),
    ) {
        let (x0, y0, x1, y1) = rect;
        let ch = self.channels;
        let w = (x1 - x0) as usize;
        // Plane pixels per grid cell (1 for chroma planes of 4:2:0, `grid` for full planes).
        let cell = (r.grid / self.sub).max(1) as usize;
        for y in 0..(y1 - y0) as usize {
            let start = (y0 as usize + y) * self.stride + x0 as usize * ch;
            let row = &mut self.data[start..start + w * ch];
            if r.coverage.is_none() {
                write(y, 0, row);
                continue;
            }
            let cy = (y / cell) as u32;
            let mut x = 0;
            while x < w {
                if !r.cell_covered((x / cell) as u32, cy) {
                    x += cell - x % cell;
                    continue;
                }
                let run_start = x;
                while x < w && r.cell_covered((x / cell) as u32, cy) {
                    x += cell - x % cell;
                }
                let end = x.min(w);
                write(y, run_start, &mut row[run_start * ch..end * ch]);
            }
        }
    }

    /// Block means of the region's rectangle: `f`×`f` blocks → `scratch.small`
    /// (`sw`×`sh`×channels). Edge blocks average what they have.
    fn downsample(
        &self,
        rect: (u32, u32, u32, u32),
        f: usize,
        scratch: &mut Scratch,
    ) -> (usize, usize) {
        let (x0, y0, x1, y1) = rect;
        let (w, h, ch) = ((x1 - x0) as usize, (y1 - y0) as usize, self.channels);
        let (sw, sh) = (w.div_ceil(f), h.div_ceil(f));
        scratch.sums.clear();
        scratch.sums.resize(sw * sh * ch, 0);
        for y in 0..h {
            let row = &self.data[(y0 as usize + y) * self.stride + x0 as usize * ch..][..w * ch];
            let sums = &mut scratch.sums[(y / f) * sw * ch..][..sw * ch];
            if ch == 1 {
                // The common case (every I420 plane, NV12 luma): a plain, vectorizable sum.
                for (acc, block) in sums.iter_mut().zip(row.chunks(f)) {
                    *acc += block.iter().map(|&v| v as u32).sum::<u32>();
                }
                continue;
            }
            for (bx, block) in row.chunks(f * ch).enumerate() {
                let acc = &mut sums[bx * ch..bx * ch + ch];
                for px in block.chunks_exact(ch) {
                    for c in 0..ch {
                        acc[c] += px[c] as u32;
                    }
                }
            }
        }
        scratch.small.clear();
        scratch.small.resize(sw * sh * ch, 0);
        for by in 0..sh {
            let bh = f.min(h - by * f) as u32;
            for bx in 0..sw {
                let n = bh * f.min(w - bx * f) as u32;
                for c in 0..ch {
                    let i = (by * sw + bx) * ch + c;
                    scratch.small[i] = ((scratch.sums[i] + n / 2) / n) as u8;
                }
            }
        }
        (sw, sh)
    }

    pub fn apply(&mut self, r: &Region, effect: Effect, scratch: &mut Scratch) {
        let rect = self.rect(r);
        let (x0, y0, x1, y1) = rect;
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        let (w, h, ch) = ((x1 - x0) as usize, (y1 - y0) as usize, self.channels);
        match effect {
            Effect::Solid { value } => self.for_covered_runs(r, rect, |_, _, run| {
                if ch == 1 {
                    run.fill(value[0]);
                } else {
                    for px in run.chunks_exact_mut(ch) {
                        px.copy_from_slice(&value[..ch]);
                    }
                }
            }),
            Effect::Pixelate { block } => {
                let f = ((block / self.sub).max(1) as usize).min(w.max(h));
                let (sw, _) = self.downsample(rect, f, scratch);
                let small = std::mem::take(&mut scratch.small);
                self.for_covered_runs(r, rect, |y, xs, run| {
                    let means = &small[(y / f) * sw * ch..];
                    // Fill block by block: each piece of the run lies in one block.
                    let n = run.len() / ch;
                    let mut i = 0;
                    while i < n {
                        let b = (xs + i) / f;
                        let end = ((b + 1) * f - xs).min(n);
                        let mean = &means[b * ch..b * ch + ch];
                        if ch == 1 {
                            run[i..end].fill(mean[0]);
                        } else {
                            for px in run[i * ch..end * ch].chunks_exact_mut(ch) {
                                px.copy_from_slice(mean);
                            }
                        }
                        i = end;
                    }
                });
                scratch.small = small;
            }
            Effect::Blur { radius } => {
                let f = ((radius / 2).max(1) as usize).min(w.max(h));
                let (sw, sh) = self.downsample(rect, f, scratch);
                let mut small = std::mem::take(&mut scratch.small);
                for _ in 0..2 {
                    box3_rows(&mut small, sw, sh, ch);
                    box3_cols(&mut small, sw, sh, ch, &mut scratch.tmp);
                }
                // Bilinear upsampling with sample centres aligned, separably: every small row is
                // first widened to full width (8-bit weights), then output rows blend two of them.
                let map = |i: usize, n: usize| {
                    let pos = ((i as f64 + 0.5) / f as f64 - 0.5).clamp(0.0, (n - 1) as f64);
                    let i0 = pos.floor() as usize;
                    (
                        i0,
                        (i0 + 1).min(n - 1),
                        ((pos - i0 as f64) * 256.0).round() as u32,
                    )
                };
                let mut wide = std::mem::take(&mut scratch.sums);
                wide.clear();
                wide.resize(sh * w * ch, 0);
                let xmap: Vec<(usize, usize, u32)> = (0..w).map(|x| map(x, sw)).collect();
                for sy in 0..sh {
                    let src = &small[sy * sw * ch..(sy + 1) * sw * ch];
                    let dst = &mut wide[sy * w * ch..(sy + 1) * w * ch];
                    for (x, &(xa, xb, wx)) in xmap.iter().enumerate() {
                        for c in 0..ch {
                            dst[x * ch + c] =
                                src[xa * ch + c] as u32 * (256 - wx) + src[xb * ch + c] as u32 * wx;
                        }
                    }
                }
                self.for_covered_runs(r, rect, |y, xs, run| {
                    let (ya, yb, wy) = map(y, sh);
                    let a = &wide[ya * w * ch + xs * ch..][..run.len()];
                    let b = &wide[yb * w * ch + xs * ch..][..run.len()];
                    for ((out, &a), &b) in run.iter_mut().zip(a).zip(b) {
                        *out = ((a * (256 - wy) + b * wy + (1 << 15)) >> 16) as u8;
                    }
                });
                scratch.small = small;
                scratch.sums = wide;
            }
        }
    }

    /// Sets every pixel of the plane to `value`.
    pub fn fill(&mut self, value: [u8; 4]) {
        let ch = self.channels;
        let w = self.width as usize * ch;
        for y in 0..self.height as usize {
            let row = &mut self.data[y * self.stride..y * self.stride + w];
            if ch == 1 {
                row.fill(value[0]);
            } else {
                for px in row.chunks_exact_mut(ch) {
                    px.copy_from_slice(&value[..ch]);
                }
            }
        }
    }
}

/// Box blur of radius 1 along rows (edges clamped), in place.
fn box3_rows(buf: &mut [u8], w: usize, h: usize, ch: usize) {
    if w < 2 {
        return;
    }
    let mut prev = vec![0u8; ch];
    for y in 0..h {
        let row = &mut buf[y * w * ch..(y + 1) * w * ch];
        prev.copy_from_slice(&row[..ch]);
        for x in 0..w {
            let next = (x + 1).min(w - 1);
            for c in 0..ch {
                let cur = row[x * ch + c] as u32;
                let v = (prev[c] as u32 + cur + row[next * ch + c] as u32 + 1) / 3;
                prev[c] = cur as u8;
                row[x * ch + c] = v as u8;
            }
        }
    }
}

/// Box blur of radius 1 along columns, via a transposed copy.
fn box3_cols(buf: &mut [u8], w: usize, h: usize, ch: usize, tmp: &mut Vec<u8>) {
    tmp.resize(w * h * ch, 0);
    transpose(buf, w, h, ch, tmp);
    box3_rows(tmp, h, w, ch);
    transpose(tmp, h, w, ch, buf);
}

fn transpose(src: &[u8], w: usize, h: usize, ch: usize, dst: &mut [u8]) {
    for y in 0..h {
        for x in 0..w {
            let s = (y * w + x) * ch;
            let d = (x * h + y) * ch;
            dst[d..d + ch].copy_from_slice(&src[s..s + ch]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(data: &mut [u8], w: u32, h: u32, ch: usize) -> Plane<'_> {
        Plane {
            stride: w as usize * ch,
            data,
            width: w,
            height: h,
            channels: ch,
            sub: 1,
        }
    }

    #[test]
    fn effects_touch_only_covered_pixels() {
        let (w, h) = (40u32, 30u32);
        let orig: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 256) as u8).collect();
        let region = Region::ellipse([5.0, 5.0, 25.0, 25.0], w, h, 1);
        for effect in [
            Effect::Blur { radius: 4 },
            Effect::Pixelate { block: 6 },
            Effect::Solid {
                value: [1, 2, 3, 0],
            },
        ] {
            let mut data = orig.clone();
            plane(&mut data, w, h, 3).apply(&region, effect, &mut Scratch::default());
            let mut changed = 0;
            for y in 0..h {
                for x in 0..w {
                    let i = ((y * w + x) * 3) as usize;
                    if !region.contains(x, y) {
                        assert_eq!(
                            data[i..i + 3],
                            orig[i..i + 3],
                            "{effect:?} changed ({x},{y})"
                        );
                    } else if data[i..i + 3] != orig[i..i + 3] {
                        changed += 1;
                    }
                }
            }
            assert!(changed > 200, "{effect:?} changed only {changed} pixels");
        }
    }

    #[test]
    fn blur_flattens_detail_and_keeps_flat_areas() {
        let (w, h) = (64u32, 64u32);
        let mut data: Vec<u8> = (0..w * h)
            .map(|i| if (i % w + i / w) % 2 == 0 { 0 } else { 200 })
            .collect();
        let region = Region::rect([0.0, 0.0, 64.0, 64.0], w, h, 1);
        plane(&mut data, w, h, 1).apply(
            &region,
            Effect::Blur { radius: 5 },
            &mut Scratch::default(),
        );
        let (lo, hi) = (data.iter().min().unwrap(), data.iter().max().unwrap());
        assert!(
            *lo >= 85 && *hi <= 115,
            "checkerboard must average out: {lo}..{hi}"
        );
        let mut flat = vec![77u8; (w * h) as usize];
        plane(&mut flat, w, h, 1).apply(
            &region,
            Effect::Blur { radius: 9 },
            &mut Scratch::default(),
        );
        assert!(flat.iter().all(|&v| v == 77));
    }

    #[test]
    fn pixelate_makes_uniform_blocks() {
        let (w, h) = (16u32, 16u32);
        let mut data: Vec<u8> = (0..w * h).map(|i| i as u8).collect();
        let region = Region::rect([0.0, 0.0, 16.0, 16.0], w, h, 1);
        plane(&mut data, w, h, 1).apply(
            &region,
            Effect::Pixelate { block: 8 },
            &mut Scratch::default(),
        );
        for y in 0..8 {
            for x in 0..8 {
                assert_eq!(data[y * 16 + x], data[0]);
            }
        }
        assert_ne!(data[0], data[8]);
    }

    #[test]
    fn odd_sized_4_2_0_frames_are_masked_to_the_edge_without_panicking() {
        // 101×75 frame: luma 101×75, chroma 51×38; an ellipse cut by the right/bottom edges.
        let region = Region::ellipse([80.0, 50.0, 130.0, 90.0], 101, 75, 2);
        let mut luma = vec![100u8; 101 * 75];
        let mut chroma = vec![100u8; 51 * 38];
        for effect in [
            Effect::Blur { radius: 6 },
            Effect::Pixelate { block: 8 },
            Effect::Solid { value: [0; 4] },
        ] {
            Plane {
                stride: 101,
                data: &mut luma,
                width: 101,
                height: 75,
                channels: 1,
                sub: 1,
            }
            .apply(&region, effect, &mut Scratch::default());
            Plane {
                stride: 51,
                data: &mut chroma,
                width: 51,
                height: 38,
                channels: 1,
                sub: 2,
            }
            .apply(&region, effect, &mut Scratch::default());
        }
        assert_eq!(
            luma[74 * 101 + 100],
            0,
            "the corner pixel inside the ellipse is masked"
        );
        assert_eq!(chroma[37 * 51 + 50], 0);
        assert_eq!(luma[0], 100);
    }

    #[test]
    fn subsampled_planes_map_regions_to_half_resolution() {
        // A 4:2:0 chroma plane of a 20×20 frame; region 4..12 × 6..10 in frame pixels.
        let mut data = vec![9u8; 10 * 10];
        let region = Region::rect([4.0, 6.0, 12.0, 10.0], 20, 20, 2);
        let mut p = Plane {
            stride: 10,
            data: &mut data,
            width: 10,
            height: 10,
            channels: 1,
            sub: 2,
        };
        p.apply(
            &region,
            Effect::Solid { value: [0; 4] },
            &mut Scratch::default(),
        );
        for y in 0..10 {
            for x in 0..10 {
                let inside = (2..6).contains(&x) && (3..5).contains(&y);
                assert_eq!(data[y * 10 + x] == 0, inside, "({x},{y})");
            }
        }
    }
}
