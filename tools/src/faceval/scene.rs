// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rendering a clip: a background, face sprites cut from photos and placed by an affine map
//! (scale, roll, mirror), occluders, then whole-frame effects. Because the composer places every
//! face itself, the ground truth is analytic and independent of any detector.
//!
//! Ground truth per face instance: the axis-aligned box of the (possibly rolled) face box, its
//! centre and width, and the *inner square* — centred on the face, half-side 0.3 × the face
//! width, so it lies inside the face for any roll up to 45° and holds eyes, nose and mouth —
//! with an 8 × 8 visibility grid over it (a cell is visible when its centre is in the frame and
//! not covered by an occluder or a face drawn later).

use std::collections::HashMap;

use rand::SeedableRng;
use serde_json::json;

use super::image::Rgb;
use super::sources::Identity;

/// One face's appearance and path through a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceSpec {
    pub identity: Identity,
    pub mirror: bool,
    /// Face box width on screen, in pixels.
    pub width: f64,
    /// Roll in degrees (positive: clockwise on screen).
    pub roll_deg: f64,
    /// 1: as photographed; 0.3: a third of the photo's contrast around the face's mean.
    pub contrast: f64,
    /// Face centre per frame (`None`: not in the clip on that frame).
    pub path: Vec<Option<(f64, f64)>>,
    /// Motion-blur streak length in pixels along the face's motion (0: none).
    pub motion_blur: f64,
    /// A rectangle that hides part of the face, relative to its centre in face widths
    /// `[x0, y0, x1, y1]`, and its colour.
    pub occluder: Option<([f64; 4], [u8; 3])>,
}

/// A whole-frame degradation on some frames: what makes detectors blink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blink {
    /// Nearly black.
    Dark,
    /// Most pixels replaced by noise.
    Glitch,
    /// Heavy defocus.
    Smear,
}

impl Blink {
    pub fn name(self) -> &'static str {
        match self {
            Blink::Dark => "dark",
            Blink::Glitch => "glitch",
            Blink::Smear => "smear",
        }
    }
}

/// Everything needed to render a clip, decided by the condition and the draw's seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpec {
    pub condition: &'static str,
    pub split: &'static str,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u32,
    pub background: &'static str,
    /// The background crop `(x, y, w, h)` as fractions of the photo.
    pub background_crop: [f64; 4],
    pub faces: Vec<FaceSpec>,
    /// Box-blur radius applied to whole frames (defocus), pixels.
    pub defocus: u32,
    /// Gain on whole frames (dark scenes < 1).
    pub gain: f64,
    /// Sensor noise, standard deviation in levels.
    pub noise: f64,
    pub blinks: Vec<(u32, Blink)>,
    /// H.264 bitrate of the encoded clip, kbit/s.
    pub bitrate_kbps: u32,
}

/// A face instance on one frame, as the scorer reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceTruth {
    pub id: usize,
    /// Axis-aligned box of the rolled face box, pixels (may reach outside the frame).
    pub bbox: [f64; 4],
    pub centre: (f64, f64),
    pub width: f64,
    /// Half-side of the inner square, pixels.
    pub inner: f64,
    /// Visibility of the 8 × 8 inner cells, row-major, bit `8 * row + column`.
    pub cells: u64,
}

impl FaceTruth {
    pub fn visible_fraction(&self) -> f64 {
        self.cells.count_ones() as f64 / 64.0
    }

    pub fn to_json(&self) -> serde_json::Value {
        let r = |v: f64| (v * 10.0).round() / 10.0;
        json!({
            "id": self.id,
            "box": self.bbox.map(r),
            "centre": [r(self.centre.0), r(self.centre.1)],
            "width": r(self.width),
            "inner": r(self.inner),
            "cells": format!("{:016x}", self.cells),
        })
    }

    pub fn from_json(v: &serde_json::Value) -> Option<FaceTruth> {
        let f = |v: &serde_json::Value| v.as_f64();
        let b = v["box"].as_array()?;
        let c = v["centre"].as_array()?;
        Some(FaceTruth {
            id: v["id"].as_u64()? as usize,
            bbox: [f(&b[0])?, f(&b[1])?, f(&b[2])?, f(&b[3])?],
            centre: (f(&c[0])?, f(&c[1])?),
            width: f(&v["width"])?,
            inner: f(&v["inner"])?,
            cells: u64::from_str_radix(v["cells"].as_str()?, 16).ok()?,
        })
    }
}

/// Source photos decoded once, with box-filtered down-sampled copies made on demand.
pub struct PhotoCache<F: FnMut(&str) -> anyhow::Result<Rgb>> {
    load: F,
    photos: HashMap<(String, u32), Rgb>,
}

impl<F: FnMut(&str) -> anyhow::Result<Rgb>> PhotoCache<F> {
    pub fn new(load: F) -> Self {
        PhotoCache {
            load,
            photos: HashMap::new(),
        }
    }

    /// The photo shrunk by the integer factor `k` (1: as is).
    pub fn get(&mut self, media: &str, k: u32) -> anyhow::Result<&Rgb> {
        let key = (media.to_owned(), k);
        if !self.photos.contains_key(&key) {
            let full_key = (media.to_owned(), 1);
            if !self.photos.contains_key(&full_key) {
                let photo = (self.load)(media)?;
                self.photos.insert(full_key.clone(), photo);
            }
            let shrunk = self.photos[&full_key].downsample(k);
            self.photos.insert(key.clone(), shrunk);
        }
        Ok(&self.photos[&key])
    }
}

/// The mean colour of a photo's face box.
fn face_mean(photo: &Rgb, face: [f64; 4]) -> [f32; 3] {
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    let (x0, y0) = (face[0].max(0.0) as u32, face[1].max(0.0) as u32);
    let (x1, y1) = ((face[2] as u32).min(photo.w), (face[3] as u32).min(photo.h));
    for y in y0..y1 {
        for x in x0..x1 {
            let p = photo.get(x, y);
            for c in 0..3 {
                sum[c] += p[c] as f64;
            }
            n += 1.0;
        }
    }
    sum.map(|s| (s / n.max(1.0)) as f32)
}

/// The affine map of a face sprite: screen point ↔ photo point.
struct SpriteMap {
    /// Photo pixels per screen pixel.
    inv_scale: f64,
    cos: f64,
    sin: f64,
    mirror: f64,
    centre: (f64, f64),
}

impl SpriteMap {
    fn new(face: &FaceSpec, centre: (f64, f64)) -> SpriteMap {
        let f = face.identity.face;
        let theta = face.roll_deg.to_radians();
        SpriteMap {
            inv_scale: (f[2] - f[0]) / face.width,
            cos: theta.cos(),
            sin: theta.sin(),
            mirror: if face.mirror { -1.0 } else { 1.0 },
            centre,
        }
    }

    /// Screen → offset from the face centre in photo pixels (un-rolled, un-mirrored).
    fn to_photo_offset(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x - self.centre.0, y - self.centre.1);
        // Rotate by -theta, then undo the mirror and the scale.
        let (rx, ry) = (
            self.cos * dx + self.sin * dy,
            -self.sin * dx + self.cos * dy,
        );
        (rx * self.inv_scale * self.mirror, ry * self.inv_scale)
    }

    /// Offset from the face centre in photo pixels → screen.
    fn to_screen(&self, ox: f64, oy: f64) -> (f64, f64) {
        let (sx, sy) = (ox * self.mirror / self.inv_scale, oy / self.inv_scale);
        (
            self.centre.0 + self.cos * sx - self.sin * sy,
            self.centre.1 + self.sin * sx + self.cos * sy,
        )
    }
}

/// The head ellipse around a face box, in offsets from the face centre (photo pixels): the
/// face, the hair above it and a little around; the sprite's alpha fades out at its rim.
fn head_ellipse(face: [f64; 4]) -> (f64, f64, f64) {
    let (w, h) = (face[2] - face[0], face[3] - face[1]);
    // (centre y offset, semi-axis x, semi-axis y)
    (-0.12 * h, 0.85 * w, 0.8 * h)
}

fn alpha_at(ox: f64, oy: f64, ellipse: (f64, f64, f64)) -> f32 {
    let (cy, ax, ay) = ellipse;
    let d = ((ox / ax).powi(2) + ((oy - cy) / ay).powi(2)).sqrt();
    // Opaque inside 80% of the radius, fading to 0 at the rim (smoothstep).
    let t = ((1.0 - d) / 0.2).clamp(0.0, 1.0);
    (t * t * (3.0 - 2.0 * t)) as f32
}

/// A rendered frame: pixels, which face owns each pixel, and the faces' ground truth.
pub struct Frame {
    pub rgb: Rgb,
    pub faces: Vec<FaceTruth>,
    pub blink: Option<Blink>,
}

/// Owner value of pixels no face owns.
const NOBODY: u16 = u16::MAX;

/// Renders the clip's frames one by one.
pub struct Renderer<F: FnMut(&str) -> anyhow::Result<Rgb>> {
    spec: ClipSpec,
    photos: PhotoCache<F>,
    background: Rgb,
    owner: Vec<u16>,
    rng: rand_chacha::ChaCha8Rng,
}

impl<F: FnMut(&str) -> anyhow::Result<Rgb>> Renderer<F> {
    pub fn new(spec: ClipSpec, load: F) -> anyhow::Result<Self> {
        let mut photos = PhotoCache::new(load);
        let bg = photos.get(spec.background, 1)?;
        let c = spec.background_crop;
        let (bw, bh) = (bg.w as f64, bg.h as f64);
        let background = bg.crop_resize(
            (c[0] * bw, c[1] * bh, c[2] * bw, c[3] * bh),
            spec.width,
            spec.height,
        );
        let owner = vec![NOBODY; (spec.width * spec.height) as usize];
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed ^ 0x006e_6f69_7365);
        Ok(Renderer {
            spec,
            photos,
            background,
            owner,
            rng,
        })
    }

    pub fn spec(&self) -> &ClipSpec {
        &self.spec
    }

    /// Renders frame `i`.
    pub fn frame(&mut self, i: u32) -> anyhow::Result<Frame> {
        let mut rgb = self.background.clone();
        self.owner.fill(NOBODY);
        let spec = self.spec.clone();
        for (id, face) in spec.faces.iter().enumerate() {
            let Some(centre) = face.path.get(i as usize).copied().flatten() else {
                continue;
            };
            self.draw_face(&mut rgb, id, face, centre, i)?;
        }
        let faces = spec
            .faces
            .iter()
            .enumerate()
            .filter_map(|(id, face)| {
                let centre = face.path.get(i as usize).copied().flatten()?;
                Some(self.truth(id, face, centre))
            })
            .collect();
        if spec.defocus > 0 {
            rgb.box_blur(spec.defocus);
        }
        if spec.gain != 1.0 {
            rgb.scale_values(spec.gain);
        }
        rgb.add_noise(spec.noise, &mut self.rng);
        let blink = spec.blinks.iter().find(|b| b.0 == i).map(|b| b.1);
        match blink {
            Some(Blink::Dark) => rgb.scale_values(0.04),
            Some(Blink::Glitch) => {
                use rand::Rng;
                for v in rgb.data.iter_mut() {
                    if self.rng.r#gen::<f64>() < 0.8 {
                        *v = self.rng.r#gen();
                    }
                }
            }
            Some(Blink::Smear) => rgb.box_blur((spec.width / 50).max(8)),
            None => {}
        }
        Ok(Frame { rgb, faces, blink })
    }

    fn draw_face(
        &mut self,
        rgb: &mut Rgb,
        id: usize,
        face: &FaceSpec,
        centre: (f64, f64),
        frame: u32,
    ) -> anyhow::Result<()> {
        let map = SpriteMap::new(face, centre);
        // Shrink the photo first when the sprite is much smaller, so it does not alias.
        let k = (map.inv_scale / 1.5).floor().max(1.0) as u32;
        let photo_full = self.photos.get(face.identity.media, 1)?;
        let mean = face_mean(photo_full, face.identity.face);
        let photo = self.photos.get(face.identity.media, k)?;
        let ellipse = head_ellipse(face.identity.face);
        // Screen bounds of the head ellipse's bounding box (plus the motion streak).
        let (cy, ax, ay) = ellipse;
        let corners = [(-ax, cy - ay), (ax, cy - ay), (-ax, cy + ay), (ax, cy + ay)];
        let pts: Vec<(f64, f64)> = corners.iter().map(|&(x, y)| map.to_screen(x, y)).collect();
        let streak = face.motion_blur;
        let x0 = pts.iter().map(|p| p.0).fold(f64::MAX, f64::min) - streak;
        let x1 = pts.iter().map(|p| p.0).fold(f64::MIN, f64::max) + streak;
        let y0 = pts.iter().map(|p| p.1).fold(f64::MAX, f64::min) - streak;
        let y1 = pts.iter().map(|p| p.1).fold(f64::MIN, f64::max) + streak;
        let (w, h) = (rgb.w as f64, rgb.h as f64);
        let (px0, py0) = (x0.max(0.0).floor() as u32, y0.max(0.0).floor() as u32);
        let (px1, py1) = (x1.min(w).ceil() as u32, y1.min(h).ceil() as u32);
        // The streak follows the face's motion on this frame.
        let dir = motion_direction(&face.path, frame as usize);
        let samples = if streak > 0.5 {
            (streak.ceil() as usize).clamp(3, 48)
        } else {
            1
        };
        let (fx, fy) = (
            face.identity.face[0] + face.identity.face[2],
            face.identity.face[1] + face.identity.face[3],
        );
        let photo_centre = (fx / 2.0 / k as f64, fy / 2.0 / k as f64);
        let contrast = face.contrast as f32;
        for y in py0..py1 {
            for x in px0..px1 {
                let (mut acc, mut alpha) = ([0f32; 3], 0f32);
                for s in 0..samples {
                    let t = if samples == 1 {
                        0.0
                    } else {
                        (s as f64 / (samples - 1) as f64 - 0.5) * streak
                    };
                    let (sx, sy) = (x as f64 + 0.5 - dir.0 * t, y as f64 + 0.5 - dir.1 * t);
                    let (ox, oy) = map.to_photo_offset(sx, sy);
                    let a = alpha_at(ox, oy, ellipse);
                    if a <= 0.0 {
                        continue;
                    }
                    let v = photo.sample(
                        photo_centre.0 + ox / k as f64,
                        photo_centre.1 + oy / k as f64,
                    );
                    for c in 0..3 {
                        acc[c] += a * (mean[c] + contrast * (v[c] - mean[c]));
                    }
                    alpha += a;
                }
                if alpha <= 0.0 {
                    continue;
                }
                let a = alpha / samples as f32;
                let old = rgb.get(x, y);
                let mut out = [0u8; 3];
                for c in 0..3 {
                    let v = acc[c] / alpha;
                    out[c] = (old[c] as f32 * (1.0 - a) + v * a)
                        .round()
                        .clamp(0.0, 255.0) as u8;
                }
                rgb.set(x, y, out);
                if a > 0.5 {
                    self.owner[(y * rgb.w + x) as usize] = id as u16;
                }
            }
        }
        if let Some((rect, colour)) = face.occluder {
            let fw = face.width;
            let (rx0, ry0) = (centre.0 + rect[0] * fw, centre.1 + rect[1] * fw);
            let (rx1, ry1) = (centre.0 + rect[2] * fw, centre.1 + rect[3] * fw);
            for y in (ry0.max(0.0) as u32)..(ry1.min(h).max(0.0) as u32) {
                for x in (rx0.max(0.0) as u32)..(rx1.min(w).max(0.0) as u32) {
                    // A little texture, so the occluder is not a flat patch.
                    let t = ((x / 3 + y / 5) % 3) as u8 * 6;
                    rgb.set(x, y, colour.map(|c| c.saturating_add(t)));
                    self.owner[(y * rgb.w + x) as usize] = NOBODY;
                }
            }
        }
        Ok(())
    }

    fn truth(&self, id: usize, face: &FaceSpec, centre: (f64, f64)) -> FaceTruth {
        let map = SpriteMap::new(face, centre);
        let f = face.identity.face;
        let (hw, hh) = ((f[2] - f[0]) / 2.0, (f[3] - f[1]) / 2.0);
        let pts: Vec<(f64, f64)> = [(-hw, -hh), (hw, -hh), (-hw, hh), (hw, hh)]
            .iter()
            .map(|&(x, y)| map.to_screen(x, y))
            .collect();
        let bbox = [
            pts.iter().map(|p| p.0).fold(f64::MAX, f64::min),
            pts.iter().map(|p| p.1).fold(f64::MAX, f64::min),
            pts.iter().map(|p| p.0).fold(f64::MIN, f64::max),
            pts.iter().map(|p| p.1).fold(f64::MIN, f64::max),
        ];
        let inner = 0.3 * face.width;
        let mut cells = 0u64;
        for r in 0..8 {
            for c in 0..8 {
                let x = centre.0 - inner + (c as f64 + 0.5) / 8.0 * 2.0 * inner;
                let y = centre.1 - inner + (r as f64 + 0.5) / 8.0 * 2.0 * inner;
                if x < 0.0 || y < 0.0 || x >= self.spec.width as f64 || y >= self.spec.height as f64
                {
                    continue;
                }
                if self.owner[(y as u32 * self.spec.width + x as u32) as usize] == id as u16 {
                    cells |= 1 << (8 * r + c);
                }
            }
        }
        FaceTruth {
            id,
            bbox,
            centre,
            width: face.width,
            inner,
            cells,
        }
    }
}

/// Unit direction of a face's motion around `frame` (zero if still).
fn motion_direction(path: &[Option<(f64, f64)>], frame: usize) -> (f64, f64) {
    let here = path.get(frame).copied().flatten();
    let next = path.get(frame + 1).copied().flatten();
    let prev = frame
        .checked_sub(1)
        .and_then(|p| path.get(p).copied().flatten());
    let (a, b) = match (prev, here, next) {
        (_, Some(h), Some(n)) => (h, n),
        (Some(p), Some(h), None) => (p, h),
        _ => return (0.0, 0.0),
    };
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt();
    if len < 1e-9 {
        (0.0, 0.0)
    } else {
        (dx / len, dy / len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_photo(_: &str) -> anyhow::Result<Rgb> {
        // A "photo" with a dark square where the identity's face box is.
        let mut img = Rgb::new(400, 400);
        img.data.iter_mut().for_each(|v| *v = 200);
        for y in 100..140 {
            for x in 220..260 {
                img.set(x, y, [20, 20, 20]);
            }
        }
        Ok(img)
    }

    fn spec(faces: Vec<FaceSpec>) -> ClipSpec {
        ClipSpec {
            condition: "test",
            split: "tune",
            seed: 1,
            width: 320,
            height: 240,
            fps: 15,
            frames: 2,
            background: "bg",
            background_crop: [0.0, 0.0, 1.0, 1.0],
            faces,
            defocus: 0,
            gain: 1.0,
            noise: 0.0,
            blinks: vec![],
            bitrate_kbps: 2000,
        }
    }

    fn face(centre: (f64, f64), roll: f64) -> FaceSpec {
        FaceSpec {
            identity: Identity {
                name: "square",
                media: "square",
                face: [220.0, 100.0, 260.0, 140.0],
            },
            mirror: false,
            width: 40.0,
            roll_deg: roll,
            contrast: 1.0,
            path: vec![Some(centre), Some(centre)],
            motion_blur: 0.0,
            occluder: None,
        }
    }

    #[test]
    fn a_face_lands_where_its_truth_says() {
        let mut r = Renderer::new(spec(vec![face((100.0, 80.0), 0.0)]), grey_photo).unwrap();
        let f = r.frame(0).unwrap();
        assert_eq!(f.faces.len(), 1);
        let t = &f.faces[0];
        for (a, b) in t.bbox.iter().zip([80.0, 60.0, 120.0, 100.0]) {
            assert!((a - b).abs() < 1e-6, "{:?}", t.bbox);
        }
        // The dark face square is drawn at its box, the background around it untouched.
        assert!(f.rgb.get(100, 80)[0] < 40);
        assert!(f.rgb.get(100, 80 + 50)[0] > 150);
        assert_eq!(t.cells, u64::MAX, "fully visible");
    }

    #[test]
    fn rolled_faces_have_rotated_boxes_and_stay_inside_the_inner_square() {
        let mut r = Renderer::new(spec(vec![face((160.0, 120.0), 45.0)]), grey_photo).unwrap();
        let f = r.frame(0).unwrap();
        let t = &f.faces[0];
        let half = 20.0 * 2f64.sqrt();
        assert!((t.bbox[2] - t.bbox[0] - 2.0 * half).abs() < 1e-6);
        // Every inner-square pixel is dark: the inner square lies inside the rolled face.
        let a = t.inner as u32;
        for y in 120 - a..120 + a {
            for x in 160 - a..160 + a {
                assert!(f.rgb.get(x, y)[0] < 60, "({x},{y})");
            }
        }
    }

    #[test]
    fn faces_cut_by_the_edge_or_covered_lose_visible_cells() {
        let edge = face((0.0, 120.0), 0.0);
        let mut covered = face((200.0, 120.0), 0.0);
        covered.occluder = Some(([-1.0, -1.0, 0.0, 1.0], [10, 200, 10]));
        let mut r = Renderer::new(spec(vec![edge, covered]), grey_photo).unwrap();
        let f = r.frame(0).unwrap();
        assert_eq!(f.faces[0].cells.count_ones(), 32, "left half off frame");
        assert_eq!(f.faces[1].cells.count_ones(), 32, "left half covered");
        // The later face hides the earlier one where they overlap.
        let mut r = Renderer::new(
            spec(vec![face((100.0, 120.0), 0.0), face((110.0, 120.0), 0.0)]),
            grey_photo,
        )
        .unwrap();
        let f = r.frame(0).unwrap();
        assert_eq!(f.faces[0].cells, 0);
        assert_eq!(f.faces[1].cells, u64::MAX);
    }
}
