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
    /// Box blur, three passes (close to a Gaussian); radius in plane pixels.
    Blur { radius: u32 },
    /// Blocks of `block` frame pixels filled with their mean.
    Pixelate { block: u32 },
    /// Every channel set to the given value (per channel of this plane).
    Solid { value: [u8; 4] },
}

/// Reusable scratch memory.
#[derive(Default)]
pub struct Scratch {
    buf: Vec<u8>,
    line: Vec<u32>,
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

    /// Whether the plane pixel (x, y) lies in a covered cell of `r`.
    fn covered(&self, r: &Region, x: u32, y: u32) -> bool {
        if r.coverage.is_none() {
            return true;
        }
        let (fx, fy) = (x * self.sub, y * self.sub);
        r.cell_covered(
            (fx.max(r.x0) - r.x0) / r.grid,
            (fy.max(r.y0) - r.y0) / r.grid,
        )
    }

    /// Writes `src` (a packed copy of the region's rectangle) back into covered pixels.
    fn write_back(&mut self, r: &Region, rect: (u32, u32, u32, u32), src: &[u8]) {
        let (x0, y0, x1, y1) = rect;
        let ch = self.channels;
        let w = (x1 - x0) as usize * ch;
        for (j, y) in (y0..y1).enumerate() {
            let row = y as usize * self.stride + x0 as usize * ch;
            let from = &src[j * w..(j + 1) * w];
            if r.coverage.is_none() {
                self.data[row..row + w].copy_from_slice(from);
            } else {
                for x in x0..x1 {
                    if self.covered(r, x, y) {
                        let o = (x - x0) as usize * ch;
                        self.data[row + o..row + o + ch].copy_from_slice(&from[o..o + ch]);
                    }
                }
            }
        }
    }

    fn copy_out(&self, rect: (u32, u32, u32, u32), out: &mut Vec<u8>) {
        let (x0, y0, x1, y1) = rect;
        let ch = self.channels;
        let w = (x1 - x0) as usize * ch;
        out.clear();
        for y in y0..y1 {
            let row = y as usize * self.stride + x0 as usize * ch;
            out.extend_from_slice(&self.data[row..row + w]);
        }
    }

    pub fn apply(&mut self, r: &Region, effect: Effect, scratch: &mut Scratch) {
        let rect = self.rect(r);
        let (x0, y0, x1, y1) = rect;
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        let (w, h, ch) = ((x1 - x0) as usize, (y1 - y0) as usize, self.channels);
        match effect {
            Effect::Solid { value } => {
                let mut buf = std::mem::take(&mut scratch.buf);
                buf.clear();
                for _ in 0..w * h {
                    buf.extend_from_slice(&value[..ch]);
                }
                self.write_back(r, rect, &buf);
                scratch.buf = buf;
            }
            Effect::Blur { radius } => {
                let mut buf = std::mem::take(&mut scratch.buf);
                self.copy_out(rect, &mut buf);
                let radius = radius.max(1) as usize;
                for _ in 0..3 {
                    box_blur_rows(&mut buf, w, h, ch, radius, &mut scratch.line);
                    box_blur_cols(
                        &mut buf,
                        w,
                        h,
                        ch,
                        radius,
                        &mut scratch.line,
                        &mut scratch.tmp,
                    );
                }
                self.write_back(r, rect, &buf);
                scratch.buf = buf;
            }
            Effect::Pixelate { block } => {
                let mut buf = std::mem::take(&mut scratch.buf);
                self.copy_out(rect, &mut buf);
                let b = (block / self.sub).max(1) as usize;
                for by in (0..h).step_by(b) {
                    for bx in (0..w).step_by(b) {
                        let (bw, bh) = (b.min(w - bx), b.min(h - by));
                        for c in 0..ch {
                            let mut sum = 0u32;
                            for y in by..by + bh {
                                for x in bx..bx + bw {
                                    sum += buf[(y * w + x) * ch + c] as u32;
                                }
                            }
                            let mean = (sum / (bw * bh) as u32) as u8;
                            for y in by..by + bh {
                                for x in bx..bx + bw {
                                    buf[(y * w + x) * ch + c] = mean;
                                }
                            }
                        }
                    }
                }
                self.write_back(r, rect, &buf);
                scratch.buf = buf;
            }
        }
    }

    /// Sets every pixel of the plane to `value`.
    pub fn fill(&mut self, value: [u8; 4]) {
        let ch = self.channels;
        let w = self.width as usize * ch;
        for y in 0..self.height as usize {
            let row = &mut self.data[y * self.stride..y * self.stride + w];
            for px in row.chunks_exact_mut(ch) {
                px.copy_from_slice(&value[..ch]);
            }
        }
    }
}

/// One horizontal box-blur pass (radius `r`, edges clamped) with running sums: the cost does
/// not depend on the radius.
fn box_blur_rows(buf: &mut [u8], w: usize, h: usize, ch: usize, r: usize, line: &mut Vec<u32>) {
    let n = (2 * r + 1) as u32;
    line.resize(w * ch, 0);
    for y in 0..h {
        let row = &mut buf[y * w * ch..(y + 1) * w * ch];
        for c in 0..ch {
            let at = |i: isize| row[(i.clamp(0, w as isize - 1) as usize) * ch + c] as u32;
            let mut sum: u32 = (-(r as isize)..=r as isize).map(at).sum();
            for x in 0..w {
                line[x * ch + c] = (sum + n / 2) / n;
                sum += at(x as isize + r as isize + 1);
                sum -= at(x as isize - r as isize);
            }
        }
        for (d, s) in row.iter_mut().zip(line.iter()) {
            *d = *s as u8;
        }
    }
}

/// One vertical box-blur pass, done on a transposed copy so memory is walked row by row.
fn box_blur_cols(
    buf: &mut [u8],
    w: usize,
    h: usize,
    ch: usize,
    r: usize,
    line: &mut Vec<u32>,
    tmp: &mut Vec<u8>,
) {
    tmp.resize(w * h * ch, 0);
    transpose(buf, w, h, ch, tmp);
    box_blur_rows(tmp, h, w, ch, r, line);
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
        let region = Region::ellipse(5.0, 5.0, 25.0, 25.0, w, h, 1);
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
        let region = Region::rect(0.0, 0.0, 64.0, 64.0, w, h, 1);
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
        let region = Region::rect(0.0, 0.0, 16.0, 16.0, w, h, 1);
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
    fn subsampled_planes_map_regions_to_half_resolution() {
        // A 4:2:0 chroma plane of a 20×20 frame; region 4..12 × 6..10 in frame pixels.
        let mut data = vec![9u8; 10 * 10];
        let region = Region::rect(4.0, 6.0, 12.0, 10.0, 20, 20, 2);
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
