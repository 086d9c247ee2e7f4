// SPDX-License-Identifier: MIT OR Apache-2.0
//! The conditions of the evaluation and the random draw of a clip for each.
//!
//! Every condition varies one thing against the same baseline: 1280×720 at 15 fps, faces 32 to
//! 160 px wide, upright within ±8°, full contrast, slow motion, some faces entering and leaving
//! during the clip (so detection latency counts). A draw is fully decided by the split and the
//! seed: the same `(condition, split, seed, frames)` renders the same clip everywhere.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::scene::{Blink, ClipSpec, FaceSpec};
use super::sources::Split;

/// The conditions, in report order, with what each varies.
pub const CONDITIONS: [(&str, &str); 19] = [
    ("size-12-20", "faces 12–20 px wide at 720p"),
    ("size-20-40", "faces 20–40 px wide at 720p"),
    ("size-40-120", "faces 40–120 px wide at 720p"),
    (
        "size-120-480",
        "faces 120–480 px wide at 720p (up to frame-filling)",
    ),
    ("portrait", "720×1280 portrait frame, faces 24–200 px"),
    ("crowd-1080p", "1920×1080, 10–16 faces 20–80 px"),
    ("uhd-4k", "3840×2160, faces 30–600 px"),
    ("low-contrast", "face contrast 0.3–0.6"),
    ("dark", "scene at 12–30% brightness with sensor noise"),
    ("noise", "sensor noise σ 8–20 levels"),
    ("defocus", "whole frame blurred (box radius 2–5 px)"),
    ("motion-blur", "faces streaked 8–24 px along their motion"),
    ("low-bitrate", "H.264 at 250–400 kbit/s"),
    ("edge-cut", "faces cut by the frame edge"),
    ("overlap", "groups of faces overlapping each other"),
    ("occluded", "20–50% of each face hidden by an object"),
    ("rolled", "faces rolled 20–45° either way"),
    ("fast-motion", "faces moving 25–60 px per frame"),
    (
        "blink",
        "frames that make detectors blink (dark, glitch, smear)",
    ),
];

pub fn is_condition(name: &str) -> bool {
    CONDITIONS.iter().any(|c| c.0 == name)
}

fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (rng.gen_range(lo.ln()..=hi.ln())).exp()
}

/// The seed of draw `draw` of `condition` in `split`: distinct per condition and split.
pub fn seed(split: Split, condition: &str, draw: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in condition.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    split.seed_base() ^ (h & 0xffff_ffff) << 8 ^ draw as u64
}

/// Draws the clip of `condition` for `seed` from `split`'s material, `frames` frames long.
///
/// Panics if `condition` is not one of [`CONDITIONS`] (callers check with [`is_condition`]).
pub fn draw(condition: &str, split: Split, seed: u64, frames: u32) -> ClipSpec {
    assert!(is_condition(condition), "unknown condition {condition}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (width, height) = match condition {
        "portrait" => (720, 1280),
        "crowd-1080p" => (1920, 1080),
        "uhd-4k" => (3840, 2160),
        _ => (1280, 720),
    };
    let (min_w, max_w) = match condition {
        "size-12-20" => (12.0, 20.0),
        "size-20-40" => (20.0, 40.0),
        "size-40-120" => (40.0, 120.0),
        "size-120-480" => (120.0, 480.0),
        "portrait" => (24.0, 200.0),
        "crowd-1080p" => (20.0, 80.0),
        "uhd-4k" => (30.0, 600.0),
        "overlap" => (40.0, 120.0),
        _ => (32.0, 160.0),
    };
    let count = match condition {
        "size-12-20" | "size-20-40" => rng.gen_range(4..=6),
        "size-120-480" => rng.gen_range(1..=2),
        "crowd-1080p" => rng.gen_range(10..=16),
        "overlap" => rng.gen_range(3..=5),
        _ => rng.gen_range(3..=5),
    };
    let identities = split.identities();
    let backgrounds = split.backgrounds();
    let background = backgrounds[rng.gen_range(0..backgrounds.len())].media;
    // A crop of 50–100% of the photo, anywhere in it.
    let (cw, ch) = (rng.gen_range(0.5..=1.0), rng.gen_range(0.5..=1.0));
    let background_crop = [
        rng.gen_range(0.0..=1.0 - cw),
        rng.gen_range(0.0..=1.0 - ch),
        cw,
        ch,
    ];
    let speed_range = match condition {
        "fast-motion" => (25.0, 60.0),
        "motion-blur" => (8.0, 20.0),
        _ => (0.0, 4.0),
    } as (f64, f64);
    let (fw, fh) = (width as f64, height as f64);
    let cluster_centre = (
        rng.gen_range(0.3 * fw..0.7 * fw),
        rng.gen_range(0.3 * fh..0.7 * fh),
    );
    let mut faces: Vec<FaceSpec> = Vec::new();
    for k in 0..count {
        let identity = identities[rng.gen_range(0..identities.len())];
        let face_w = log_uniform(&mut rng, min_w, max_w);
        let face_h =
            face_w * (identity.face[3] - identity.face[1]) / (identity.face[2] - identity.face[0]);
        let roll_deg = if condition == "rolled" {
            rng.gen_range(20.0..=45.0) * if rng.r#gen() { 1.0 } else { -1.0 }
        } else {
            rng.gen_range(-8.0..=8.0)
        };
        let contrast = if condition == "low-contrast" {
            rng.gen_range(0.3..=0.6)
        } else {
            1.0
        };
        // Where it starts: clear of the edges (unless edge-cut), else near an edge; in a
        // group for overlap; elsewhere apart from the faces placed before, when possible.
        let margin = face_w.max(face_h) * 0.9;
        let start = match condition {
            "edge-cut" => {
                let off = rng.gen_range(-0.3..=0.3) * face_w;
                match rng.gen_range(0..4) {
                    0 => (off, rng.gen_range(margin..fh - margin)),
                    1 => (fw + off, rng.gen_range(margin..fh - margin)),
                    2 => (rng.gen_range(margin..fw - margin), off),
                    _ => (rng.gen_range(margin..fw - margin), fh + off),
                }
            }
            "overlap" => {
                let step = face_w * rng.gen_range(0.5..=0.8);
                (
                    cluster_centre.0 + (k as f64 - count as f64 / 2.0) * step,
                    cluster_centre.1 + rng.gen_range(-0.3..=0.3) * face_w,
                )
            }
            _ => {
                let mut best = (fw / 2.0, fh / 2.0);
                for _ in 0..40 {
                    let p = (
                        rng.gen_range(margin.min(fw / 2.0)..=(fw - margin).max(fw / 2.0)),
                        rng.gen_range(margin.min(fh / 2.0)..=(fh - margin).max(fh / 2.0)),
                    );
                    best = p;
                    let clear = faces.iter().all(|f| {
                        f.path.iter().flatten().next().is_none_or(|q| {
                            (q.0 - p.0).abs() > (f.width + face_w) * 0.9
                                || (q.1 - p.1).abs() > (f.width + face_w) * 1.2
                        })
                    });
                    if clear {
                        break;
                    }
                }
                best
            }
        };
        let speed = rng.gen_range(speed_range.0..=speed_range.1);
        let angle: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
        let mut velocity = if condition == "edge-cut" {
            // Along the edge it is cut by.
            if start.0 < margin || start.0 > fw - margin {
                (0.0, speed.max(1.0) * if rng.r#gen() { 1.0 } else { -1.0 })
            } else {
                (speed.max(1.0) * if rng.r#gen() { 1.0 } else { -1.0 }, 0.0)
            }
        } else if condition == "overlap" {
            (rng.gen_range(-1.0..=1.0), rng.gen_range(-1.0..=1.0))
        } else {
            (speed * angle.cos(), speed * angle.sin())
        };
        // Half the faces are there from the start; the others enter in the first third and
        // some leave in the last third.
        let first = if k % 2 == 0 {
            0
        } else {
            rng.gen_range(0..=frames / 3)
        };
        let last = if k % 3 == 1 {
            rng.gen_range(2 * frames / 3..frames)
        } else {
            frames - 1
        };
        let mut path = vec![None; frames as usize];
        let mut p = start;
        let edge_cut = condition == "edge-cut";
        for (i, slot) in path.iter_mut().enumerate() {
            if (first..=last).contains(&(i as u32)) {
                *slot = Some(p);
            }
            let next = (p.0 + velocity.0, p.1 + velocity.1);
            // Bounce off the frame (the edge-cut faces off the far ends of their edge).
            let (lo_x, hi_x, lo_y, hi_y) = if edge_cut {
                (
                    -0.3 * face_w,
                    fw + 0.3 * face_w,
                    -0.3 * face_w,
                    fh + 0.3 * face_w,
                )
            } else {
                (
                    face_w * 0.5,
                    fw - face_w * 0.5,
                    face_h * 0.5,
                    fh - face_h * 0.5,
                )
            };
            if next.0 < lo_x || next.0 > hi_x {
                velocity.0 = -velocity.0;
            }
            if next.1 < lo_y || next.1 > hi_y {
                velocity.1 = -velocity.1;
            }
            p = (p.0 + velocity.0, p.1 + velocity.1);
        }
        let motion_blur = if condition == "motion-blur" {
            rng.gen_range(8.0..=24.0)
        } else {
            0.0
        };
        let occluder = (condition == "occluded").then(|| {
            let f = rng.gen_range(0.2..=0.5);
            let colour = [
                rng.gen_range(20..=230),
                rng.gen_range(20..=230),
                rng.gen_range(20..=230),
            ];
            let (hw, hh) = (0.5, 0.5 * face_h / face_w);
            let rect = match rng.gen_range(0..4) {
                0 => [-hw - 0.3, -hh - 0.3, -hw + 2.0 * hw * f, hh + 0.3],
                1 => [hw - 2.0 * hw * f, -hh - 0.3, hw + 0.3, hh + 0.3],
                2 => [-hw - 0.3, -hh - 0.3, hw + 0.3, -hh + 2.0 * hh * f],
                _ => [-hw - 0.3, hh - 2.0 * hh * f, hw + 0.3, hh + 0.3],
            };
            (rect, colour)
        });
        faces.push(FaceSpec {
            identity,
            mirror: rng.r#gen(),
            width: face_w,
            roll_deg,
            contrast,
            path,
            motion_blur,
            occluder,
        });
    }
    let blinks = if condition == "blink" {
        let mut picked: Vec<(u32, Blink)> = Vec::new();
        let kinds = [Blink::Dark, Blink::Glitch, Blink::Smear];
        for kind in kinds {
            let f = rng.gen_range(1..frames.max(2));
            if !picked.iter().any(|p| p.0 == f) {
                picked.push((f, kind));
            }
        }
        picked.sort_by_key(|p| p.0);
        picked
    } else {
        Vec::new()
    };
    ClipSpec {
        condition: CONDITIONS
            .iter()
            .find(|c| c.0 == condition)
            .map(|c| c.0)
            .unwrap_or("unknown"),
        split: split.name(),
        seed,
        width,
        height,
        fps: 15,
        frames,
        background,
        background_crop,
        faces,
        defocus: if condition == "defocus" {
            rng.gen_range(2..=5)
        } else {
            0
        },
        gain: if condition == "dark" {
            rng.gen_range(0.12..=0.3)
        } else {
            1.0
        },
        noise: match condition {
            "noise" => rng.gen_range(8.0..=20.0),
            "dark" => 3.0,
            _ => 1.0,
        },
        blinks,
        bitrate_kbps: if condition == "low-bitrate" {
            rng.gen_range(250..=400)
        } else {
            // About what a camera spends on this size at 15 fps.
            (width * height / 300).clamp(2000, 20000)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_differ_by_seed_and_split() {
        for (name, _) in CONDITIONS {
            let a = draw(name, Split::Tune, seed(Split::Tune, name, 0), 20);
            let b = draw(name, Split::Tune, seed(Split::Tune, name, 0), 20);
            assert_eq!(a, b, "{name}");
            let c = draw(name, Split::Tune, seed(Split::Tune, name, 1), 20);
            assert_ne!(a, c, "{name}");
            assert!(!a.faces.is_empty());
            assert!(
                a.faces
                    .iter()
                    .all(|f| Split::Tune.identities().contains(&f.identity))
            );
            let h = draw(name, Split::Holdout, seed(Split::Holdout, name, 0), 20);
            assert!(
                h.faces
                    .iter()
                    .all(|f| Split::Holdout.identities().contains(&f.identity))
            );
        }
        assert_ne!(
            seed(Split::Tune, "rolled", 0),
            seed(Split::Holdout, "rolled", 0)
        );
        assert_ne!(seed(Split::Tune, "rolled", 0), seed(Split::Tune, "dark", 0));
    }

    #[test]
    fn conditions_vary_what_they_say() {
        let d = |name| draw(name, Split::Tune, seed(Split::Tune, name, 3), 30);
        assert!(
            d("size-12-20")
                .faces
                .iter()
                .all(|f| (12.0..=20.0).contains(&f.width))
        );
        assert!(d("rolled").faces.iter().all(|f| f.roll_deg.abs() >= 20.0));
        assert_eq!((d("portrait").width, d("portrait").height), (720, 1280));
        let fast = d("fast-motion");
        let f = &fast.faces[0];
        let steps: Vec<f64> = f
            .path
            .windows(2)
            .filter_map(|w| Some((w[0]?, w[1]?)))
            .map(|(a, b)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt())
            .collect();
        assert!(steps.iter().any(|&s| s >= 25.0), "{steps:?}");
        assert_eq!(d("blink").blinks.len(), 3);
        assert!(d("low-bitrate").bitrate_kbps <= 400);
        // Faces enter during the clip in some draws: detection latency is exercised.
        let late = CONDITIONS
            .iter()
            .flat_map(|(n, _)| d(n).faces)
            .filter(|f| f.path[0].is_none())
            .count();
        assert!(late > 5, "{late}");
    }
}
