// SPDX-License-Identifier: MIT OR Apache-2.0
//! The synthesized face clip: known faces moving over a face-free background, with moments
//! where a detector is expected to blink (darkness, noise, blur). Because the synthesis places
//! every face itself, the ground truth is independent of any detector.

use serde_json::json;

pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;
pub const FPS: u32 = 15;
pub const FRAMES: u32 = 120;
/// Frames before and after the faces are on screen.
pub const EMPTY_HEAD: u32 = 15;
pub const EMPTY_TAIL: u32 = 15;

/// A face sprite: where to cut it from which photo, how much to scale it, and where its face is.
pub struct SpriteSource {
    pub media: &'static str,
    /// Crop (x, y, w, h) in the photo.
    pub crop: (u32, u32, u32, u32),
    pub scale: f64,
    /// The face box (x0, y0, x1, y1) in photo coordinates, from the photo's reference detection.
    pub face: (f64, f64, f64, f64),
    /// Start and end of the sprite's top-left corner on screen, linearly in between.
    pub path: ((f64, f64), (f64, f64)),
}

pub const SPRITES: [SpriteSource; 3] = [
    SpriteSource {
        media: "astronaut.png",
        crop: (150, 30, 150, 180),
        scale: 1.6,
        face: (181.5, 58.2, 269.9, 177.8),
        path: ((40.0, 60.0), (1000.0, 120.0)),
    },
    SpriteSource {
        media: "messi5.jpg",
        crop: (200, 60, 85, 100),
        scale: 2.5,
        face: (225.5, 92.8, 257.1, 135.0),
        path: ((1040.0, 420.0), (60.0, 380.0)),
    },
    SpriteSource {
        media: "astronaut.png",
        crop: (150, 30, 150, 180),
        scale: 0.9,
        face: (181.5, 58.2, 269.9, 177.8),
        path: ((560.0, 540.0), (700.0, 40.0)),
    },
];

/// How a frame is degraded to make detectors blink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degradation {
    Dark,
    Noise,
    Blur,
}

impl Degradation {
    pub fn name(self) -> &'static str {
        match self {
            Degradation::Dark => "dark",
            Degradation::Noise => "noise",
            Degradation::Blur => "blur",
        }
    }
}

pub fn degradation(frame: u32) -> Option<Degradation> {
    match frame {
        50..=52 => Some(Degradation::Dark),
        70..=71 => Some(Degradation::Noise),
        88..=89 => Some(Degradation::Blur),
        _ => None,
    }
}

pub fn faces_visible(frame: u32) -> bool {
    (EMPTY_HEAD..FRAMES - EMPTY_TAIL).contains(&frame)
}

/// Top-left corner of sprite `s` at `frame` (only meaningful while faces are visible).
pub fn sprite_position(s: &SpriteSource, frame: u32) -> (i64, i64) {
    let span = (FRAMES - EMPTY_HEAD - EMPTY_TAIL - 1) as f64;
    let t = (frame.saturating_sub(EMPTY_HEAD)) as f64 / span;
    let ((x0, y0), (x1, y1)) = s.path;
    (
        (x0 + (x1 - x0) * t).round() as i64,
        (y0 + (y1 - y0) * t).round() as i64,
    )
}

/// The face box of sprite `s` on screen at `frame`, in pixels.
pub fn face_box(s: &SpriteSource, frame: u32) -> [f64; 4] {
    let (px, py) = sprite_position(s, frame);
    let (cx, cy, _, _) = s.crop;
    let f = |v: f64, c: u32, p: i64| p as f64 + (v - c as f64) * s.scale;
    [
        f(s.face.0, cx, px),
        f(s.face.1, cy, py),
        f(s.face.2, cx, px),
        f(s.face.3, cy, py),
    ]
}

/// Ground truth for the whole clip, as JSON.
pub fn ground_truth() -> serde_json::Value {
    let frames: Vec<serde_json::Value> = (0..FRAMES)
        .map(|i| {
            let faces: Vec<[f64; 4]> = if faces_visible(i) {
                SPRITES
                    .iter()
                    .map(|s| face_box(s, i).map(|v| v.round()))
                    .collect()
            } else {
                Vec::new()
            };
            json!({"frame": i, "faces": faces, "degraded": degradation(i).map(Degradation::name)})
        })
        .collect();
    json!({"width": WIDTH, "height": HEIGHT, "fps": FPS, "frames": frames})
}

/// A deterministic pseudo-random generator (xorshift), so the clip is the same everywhere.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next_u8(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u8
    }
}

/// The face-free background: a soft gradient with a little texture.
pub fn background() -> Vec<u8> {
    let mut rng = Rng::new(7);
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let i = ((y * WIDTH + x) * 3) as usize;
            let n = (rng.next_u8() % 12) as u32;
            rgb[i] = (60 + x * 80 / WIDTH + n) as u8;
            rgb[i + 1] = (90 + y * 60 / HEIGHT + n) as u8;
            rgb[i + 2] = (120 - x * 40 / WIDTH + n) as u8;
        }
    }
    rgb
}

/// Copies an RGB sprite onto the frame at (px, py), clipping at the edges.
pub fn paste(frame: &mut [u8], sprite: &[u8], sw: u32, sh: u32, px: i64, py: i64) {
    for sy in 0..sh as i64 {
        let y = py + sy;
        if y < 0 || y >= HEIGHT as i64 {
            continue;
        }
        for sx in 0..sw as i64 {
            let x = px + sx;
            if x < 0 || x >= WIDTH as i64 {
                continue;
            }
            let d = ((y as u32 * WIDTH + x as u32) * 3) as usize;
            let s = ((sy as u32 * sw + sx as u32) * 3) as usize;
            frame[d..d + 3].copy_from_slice(&sprite[s..s + 3]);
        }
    }
}

/// Applies a degradation in place.
pub fn degrade(frame: &mut [u8], how: Degradation, seed: u64) {
    match how {
        Degradation::Dark => frame.iter_mut().for_each(|v| *v /= 40),
        Degradation::Noise => {
            let mut rng = Rng::new(seed);
            // Most pixels replaced by noise: a sensor glitch, not mild grain.
            frame.iter_mut().for_each(|v| {
                let n = rng.next_u8();
                if n < 200 {
                    *v = rng.next_u8();
                }
            })
        }
        Degradation::Blur => {
            // Box blur (radius 24) horizontally then vertically: heavy defocus.
            let r = 24i64;
            for pass in 0..2 {
                let src = frame.to_vec();
                let (w, h) = (WIDTH as i64, HEIGHT as i64);
                for y in 0..h {
                    for x in 0..w {
                        for c in 0..3 {
                            let mut sum = 0u32;
                            let mut n = 0u32;
                            for k in -r..=r {
                                let (xx, yy) = if pass == 0 { (x + k, y) } else { (x, y + k) };
                                if xx >= 0 && xx < w && yy >= 0 && yy < h {
                                    sum += src[((yy * w + xx) * 3 + c) as usize] as u32;
                                    n += 1;
                                }
                            }
                            frame[((y * w + x) * 3 + c) as usize] = (sum / n) as u8;
                        }
                    }
                }
            }
        }
    }
}

/// A synthetic inspected part, RGB `w`×`h`: a light grey surface with a gentle gradient (as a
/// lit metal part), and when `bad`, a dark 24×24 blob at (40 + shift, 50) — what the
/// purpose-built `darkblob.onnx` classifier tells apart. `shift` varies parts from each other.
pub fn inspection_part(w: usize, h: usize, bad: bool, shift: usize) -> Vec<u8> {
    let mut data = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let v = 200 + ((x + y + shift) % 40) as u8;
            let dark = bad && (40 + shift..64 + shift).contains(&x) && (50..74).contains(&y);
            let px = if dark { 30 } else { v };
            data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[px, px, px]);
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_move_and_stay_on_screen() {
        for s in &SPRITES {
            let a = face_box(s, EMPTY_HEAD);
            let b = face_box(s, FRAMES - EMPTY_TAIL - 1);
            assert_ne!(a, b, "sprites must move");
            for f in [a, b] {
                assert!(
                    f[0] >= 0.0 && f[1] >= 0.0 && f[2] <= WIDTH as f64 && f[3] <= HEIGHT as f64,
                    "{f:?}"
                );
            }
        }
        assert!(!faces_visible(0) && faces_visible(EMPTY_HEAD) && !faces_visible(FRAMES - 1));
    }
}
