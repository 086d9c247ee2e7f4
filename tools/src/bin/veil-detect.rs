// SPDX-License-Identifier: MIT OR Apache-2.0
//! Runs a detection pipeline and prints, per frame, what `inferfilter` found, as JSON lines.
//!
//! usage: veil-detect 'PIPELINE'   (a gst-launch-1.0 description without a sink)

use std::io::Write;

use clap::Parser;

/// Runs a gst-launch-1.0 description (without a sink) and prints each frame's regions of
/// interest as one JSON line; a summary goes to standard error.
#[derive(Parser)]
#[command(name = "veil-detect", version)]
struct Cli {
    /// The pipeline, e.g. 'filesrc location=in.mp4 ! decodebin ! videoconvert ! inferfilter
    /// model=centerface.onnx' (several arguments are joined with spaces).
    #[arg(value_name = "PIPELINE", required = true, num_args = 1..)]
    pipeline: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let description = Cli::parse().pipeline.join(" ");
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
