// SPDX-License-Identifier: MIT OR Apache-2.0
//! Packed 8-bit RGB images and the few operations the clip composer needs: bilinear sampling,
//! box-filtered down-sampling (so small sprites do not alias), separable box blur, noise.

/// A packed RGB image, rows without padding (`data.len() == w * h * 3`).
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb {
    pub w: u32,
    pub h: u32,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn new(w: u32, h: u32) -> Rgb {
        Rgb {
            w,
            h,
            data: vec![0; (w * h * 3) as usize],
        }
    }

    /// Wraps packed RGB rows; `None` if the length does not match `w × h × 3`.
    pub fn from_raw(w: u32, h: u32, data: Vec<u8>) -> Option<Rgb> {
        (data.len() == (w * h * 3) as usize).then_some(Rgb { w, h, data })
    }

    fn index(&self, x: u32, y: u32) -> usize {
        ((y * self.w + x) * 3) as usize
    }

    pub fn get(&self, x: u32, y: u32) -> [u8; 3] {
        let i = self.index(x, y);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    pub fn set(&mut self, x: u32, y: u32, v: [u8; 3]) {
        let i = self.index(x, y);
        self.data[i..i + 3].copy_from_slice(&v);
    }

    /// Bilinear sample at continuous coordinates (pixel centres at `i + 0.5`), clamped to the
    /// image.
    pub fn sample(&self, x: f64, y: f64) -> [f32; 3] {
        let fx = (x - 0.5).clamp(0.0, (self.w - 1) as f64);
        let fy = (y - 0.5).clamp(0.0, (self.h - 1) as f64);
        let (x0, y0) = (fx.floor() as u32, fy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (ax, ay) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
        let (p00, p10, p01, p11) = (
            self.get(x0, y0),
            self.get(x1, y0),
            self.get(x0, y1),
            self.get(x1, y1),
        );
        let mut out = [0f32; 3];
        for c in 0..3 {
            let top = p00[c] as f32 * (1.0 - ax) + p10[c] as f32 * ax;
            let bottom = p01[c] as f32 * (1.0 - ax) + p11[c] as f32 * ax;
            out[c] = top * (1.0 - ay) + bottom * ay;
        }
        out
    }

    /// Averages `k × k` blocks (the last partial block averages what it has).
    pub fn downsample(&self, k: u32) -> Rgb {
        if k <= 1 {
            return self.clone();
        }
        let (w, h) = (self.w.div_ceil(k), self.h.div_ceil(k));
        let mut out = Rgb::new(w, h);
        for by in 0..h {
            for bx in 0..w {
                let mut sum = [0u32; 3];
                let mut n = 0;
                for y in by * k..((by + 1) * k).min(self.h) {
                    for x in bx * k..((bx + 1) * k).min(self.w) {
                        let p = self.get(x, y);
                        for (s, v) in sum.iter_mut().zip(p) {
                            *s += v as u32;
                        }
                        n += 1;
                    }
                }
                out.set(bx, by, sum.map(|s| (s / n) as u8));
            }
        }
        out
    }

    /// The region `(x, y, cw, ch)` of this image scaled to `w × h` (box pre-filter, then
    /// bilinear), e.g. a background crop filling a frame.
    pub fn crop_resize(&self, region: (f64, f64, f64, f64), w: u32, h: u32) -> Rgb {
        let (x, y, cw, ch) = region;
        let shrink = (cw / w as f64).min(ch / h as f64);
        let k = (shrink.floor() as u32).max(1);
        let src = self.downsample(k);
        let (sx, sy) = (cw / k as f64 / w as f64, ch / k as f64 / h as f64);
        let mut out = Rgb::new(w, h);
        for j in 0..h {
            for i in 0..w {
                let v = src.sample(
                    x / k as f64 + (i as f64 + 0.5) * sx,
                    y / k as f64 + (j as f64 + 0.5) * sy,
                );
                out.set(i, j, v.map(|c| c.round() as u8));
            }
        }
        out
    }

    /// Box blur of radius `r` horizontally then vertically (running sums: cost independent of
    /// `r`); edges repeat the border pixel.
    pub fn box_blur(&mut self, r: u32) {
        if r == 0 {
            return;
        }
        let (w, h) = (self.w as usize, self.h as usize);
        let r = r as i64;
        let n = (2 * r + 1) as u32;
        let mut line = Vec::new();
        for pass in 0..2 {
            let (len, lines) = if pass == 0 { (w, h) } else { (h, w) };
            for l in 0..lines {
                let at = |i: usize| {
                    if pass == 0 {
                        (l * w + i) * 3
                    } else {
                        (i * w + l) * 3
                    }
                };
                line.clear();
                line.extend((0..len).map(|i| {
                    let p = at(i);
                    [self.data[p], self.data[p + 1], self.data[p + 2]]
                }));
                let clamp = |i: i64| line[i.clamp(0, len as i64 - 1) as usize];
                let mut sum = [0u32; 3];
                for k in -r..=r {
                    for (s, v) in sum.iter_mut().zip(clamp(k)) {
                        *s += v as u32;
                    }
                }
                for i in 0..len as i64 {
                    let p = at(i as usize);
                    for (out, s) in self.data[p..p + 3].iter_mut().zip(&sum) {
                        *out = ((s + n / 2) / n) as u8;
                    }
                    let (add, sub) = (clamp(i + r + 1), clamp(i - r));
                    for ((s, a), b) in sum.iter_mut().zip(add).zip(sub) {
                        *s = *s + a as u32 - b as u32;
                    }
                }
            }
        }
    }

    /// Adds zero-mean noise of standard deviation `sigma` (levels) to every channel.
    pub fn add_noise(&mut self, sigma: f64, rng: &mut impl rand::Rng) {
        if sigma <= 0.0 {
            return;
        }
        for v in self.data.iter_mut() {
            // Sum of four uniforms: close enough to Gaussian for sensor noise, and cheap.
            let u: f64 = (0..4).map(|_| rng.r#gen::<f64>()).sum::<f64>() - 2.0;
            let n = u * sigma * (3.0f64).sqrt();
            *v = (*v as f64 + n).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// Multiplies every value by `gain` (dark scenes: `gain` < 1).
    pub fn scale_values(&mut self, gain: f64) {
        for v in self.data.iter_mut() {
            *v = (*v as f64 * gain).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// BT.601 luma of every pixel.
    pub fn luma(&self) -> Vec<u8> {
        luma_of(&self.data)
    }
}

/// BT.601 luma of packed RGB pixels (integer weights 77/150/29 of 256).
pub fn luma_of(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| ((77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32 + 128) >> 8) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> Rgb {
        let mut img = Rgb::new(w, h);
        for y in 0..h {
            for x in 0..w {
                img.set(x, y, [(x * 10) as u8, (y * 10) as u8, 100]);
            }
        }
        img
    }

    #[test]
    fn bilinear_sampling_hits_pixel_centres_and_interpolates() {
        let img = ramp(8, 8);
        assert_eq!(img.sample(2.5, 3.5), [20.0, 30.0, 100.0]);
        assert_eq!(img.sample(3.0, 3.5), [25.0, 30.0, 100.0]);
        // Clamped outside.
        assert_eq!(img.sample(-5.0, 0.0), [0.0, 0.0, 100.0]);
    }

    #[test]
    fn downsampling_averages_blocks() {
        let img = ramp(4, 4);
        let d = img.downsample(2);
        assert_eq!((d.w, d.h), (2, 2));
        assert_eq!(d.get(0, 0), [5, 5, 100]);
        assert_eq!(d.get(1, 1), [25, 25, 100]);
    }

    #[test]
    fn box_blur_keeps_flat_images_and_smooths_steps() {
        let mut flat = Rgb::new(9, 5);
        flat.data.iter_mut().for_each(|v| *v = 77);
        let before = flat.clone();
        flat.box_blur(3);
        assert_eq!(flat, before);
        let mut step = Rgb::new(10, 1);
        for x in 5..10 {
            step.set(x, 0, [200, 200, 200]);
        }
        step.box_blur(1);
        assert_eq!(step.get(4, 0)[0], 67);
        assert_eq!(step.get(5, 0)[0], 133);
        assert_eq!(step.get(0, 0)[0], 0);
    }

    #[test]
    fn crop_resize_maps_the_region_onto_the_output() {
        let img = ramp(20, 20);
        let out = img.crop_resize((10.0, 0.0, 10.0, 10.0), 5, 5);
        // Output pixel 0 covers source x 10..12: centre 11 → value 105 (10 per pixel, x=10.5).
        assert!(
            (out.get(0, 0)[0] as i32 - 105).abs() <= 1,
            "{:?}",
            out.get(0, 0)
        );
    }
}
