// SPDX-License-Identifier: MIT OR Apache-2.0
//! Runs a detection pipeline and prints, per frame, what `inferfilter` found, as JSON lines.
//!
//! usage: veil-detect 'PIPELINE'   (a gst-launch-1.0 description without a sink)

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        anyhow::bail!(
            "usage: veil-detect 'filesrc location=... ! decodebin ! videoconvert ! inferfilter model=...'"
        );
    }
    let description = args.join(" ");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let started = std::time::Instant::now();
    let frames = veil_tools::frames::run_pipeline(&description, |rec| {
        let _ = writeln!(out, "{}", rec.to_json());
    })?;
    let with = frames.iter().filter(|f| !f.detections.is_empty()).count();
    let total: usize = frames.iter().map(|f| f.detections.len()).sum();
    eprintln!(
        "{} frames in {:.1} s, {} with detections, {} detections",
        frames.len(),
        started.elapsed().as_secs_f64(),
        with,
        total
    );
    Ok(())
}
