// SPDX-License-Identifier: MIT OR Apache-2.0
//! Counts face instances left unmasked in an anonymized version of the synthesized clip.
//!
//! usage: veil-leak ORIGINAL.mp4 ANONYMIZED.mp4   (ground truth: ORIGINAL.json)
//!
//! A ground-truth face instance (frame, box) counts as leaked when its inner region (the central
//! 60% of the box) is nearly unchanged from the original (mean absolute difference below 6
//! levels and below 35% of the region's own detail), or when CenterFace at threshold 0.5
//! re-detects a face over it (IoU ≥ 0.3). The ground truth comes from the synthesis,
//! independent of any detector.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use veil_meta::roi::iou;
use veil_tools::assets;
use veil_tools::frames::{packed_rgb as rgb, run_pipeline_samples};

/// Counts the synthesized clip's face instances left recognisable in an anonymized version; prints
/// one JSON object. (The full evaluation, with conditions and splits, is `veil-faceval`.)
#[derive(Parser)]
#[command(name = "veil-leak", version)]
struct Cli {
    /// The synthesized clip; its ground truth is the `.json` beside it.
    #[arg(value_name = "ORIGINAL.mp4")]
    original: PathBuf,
    /// The anonymized clip, the same frames.
    #[arg(value_name = "ANONYMIZED.mp4")]
    anonymized: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    for file in [&cli.original, &cli.anonymized] {
        anyhow::ensure!(file.is_file(), "{}: no such file", file.display());
    }
    let (original, anonymized) = (cli.original.display(), cli.anonymized.display());
    let truth_path = cli.original.with_extension("json");
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&truth_path)
            .with_context(|| format!("{}: cannot read the ground truth", truth_path.display()))?,
    )
    .with_context(|| format!("{}: not JSON", truth_path.display()))?;
    gst::init()?;
    gstveilinference_register()?;
    let decode = |file: &str, extra: &str| {
        run_pipeline_samples(&format!(
            "filesrc location=\"{file}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB{extra}"
        ))
    };
    let orig = decode(&original.to_string(), "")?;
    let anon = decode(
        &anonymized.to_string(),
        &format!(
            " ! inferfilter model=\"{}\" threshold=0.5",
            assets::path("models/centerface.onnx")?.display()
        ),
    )?;
    let frames = truth["frames"].as_array().context("frames")?;
    anyhow::ensure!(
        anon.len() == frames.len() && orig.len() == frames.len(),
        "frame counts differ: original {}, anonymized {}, ground truth {}",
        orig.len(),
        anon.len(),
        frames.len()
    );
    let (mut total, mut leaked, mut unchanged, mut redetected) = (0, 0, 0, 0);
    let (mut degraded_total, mut degraded_leaked) = (0, 0);
    for (i, t) in frames.iter().enumerate() {
        let (a, w, h) = rgb(&orig[i])?;
        let (b, _, _) = rgb(&anon[i])?;
        let detections: Vec<[f64; 4]> =
            veil_meta::Detection::all(anon[i].buffer().context("buffer")?, w, h)
                .iter()
                .map(|d| {
                    [
                        d.bbox.x_min * w as f64,
                        d.bbox.y_min * h as f64,
                        d.bbox.x_max * w as f64,
                        d.bbox.y_max * h as f64,
                    ]
                })
                .collect();
        for f in t["faces"].as_array().context("faces")? {
            let f: Vec<f64> = f
                .as_array()
                .context("box")?
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            let face = [f[0], f[1], f[2], f[3]];
            let (cw, ch) = ((face[2] - face[0]) * 0.2, (face[3] - face[1]) * 0.2);
            let (x0, y0) = (
                (face[0] + cw).max(0.0) as u32,
                (face[1] + ch).max(0.0) as u32,
            );
            let (x1, y1) = (
                ((face[2] - cw) as u32).min(w),
                ((face[3] - ch) as u32).min(h),
            );
            // Detail that survived: the change relative to the region's own detail (its
            // deviation from its mean). A mask destroys detail (ratio near 1 or more); an
            // untouched face only differs by coding noise (ratio near 0). Plain "mean change
            // below 6 levels" alone would call a masked face in a near-black frame unchanged.
            let (mut diff, mut n, mut sum) = (0f64, 0f64, 0f64);
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        diff += (a[p + c] as f64 - b[p + c] as f64).abs();
                        sum += a[p + c] as f64;
                        n += 1.0;
                    }
                }
            }
            let mean = sum / n.max(1.0);
            let mut detail = 0f64;
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        detail += (a[p + c] as f64 - mean).abs();
                    }
                }
            }
            let same = n > 0.0 && diff / n < 6.0 && diff < 0.35 * detail;
            if std::env::var_os("VEIL_LEAK_VERBOSE").is_some() {
                eprintln!(
                    "frame {i} face {face:?}: change {:.1}/px, detail ratio {:.2}, redetected {}",
                    diff / n,
                    diff / detail.max(1.0),
                    detections.iter().any(|d| iou(d, &face) >= 0.3)
                );
            }
            let found = detections.iter().any(|d| iou(d, &face) >= 0.3);
            total += 1;
            let degraded = !t["degraded"].is_null();
            if degraded {
                degraded_total += 1;
            }
            if same || found {
                leaked += 1;
                unchanged += same as usize;
                redetected += found as usize;
                if degraded {
                    degraded_leaked += 1;
                }
            }
        }
    }
    println!(
        "{{\"face_instances\": {total}, \"leaked\": {leaked}, \"leak_pct\": {:.2}, \"unchanged\": {unchanged}, \"redetected\": {redetected}, \"blink_instances\": {degraded_total}, \"blink_leaked\": {degraded_leaked}}}",
        100.0 * leaked as f64 / total.max(1) as f64
    );
    Ok(())
}

/// The inference plugin is linked in, so the tool works without GST_PLUGIN_PATH.
fn gstveilinference_register() -> anyhow::Result<()> {
    gstveilinference::plugin_register_static()?;
    Ok(())
}
