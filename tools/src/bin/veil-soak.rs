// SPDX-License-Identifier: MIT OR Apache-2.0
//! Soak benchmark: runs a chain over a clip looped without a seam until a number of frames has
//! passed, as fast as the machine goes, and samples the process's resident memory. Each pass of
//! the clip is new people to the chain (tracking is by motion only, nobody is recognised).
//!
//! usage: veil-soak --input CLIP --chain 'DESCRIPTION' [--frames N] [--samples K]
//!
//! Prints one JSON line per sample (`frames`, `rss_kib`, `elapsed_s`) and a summary line: the
//! resident set at 10% and at 100% of the frames and the growth between them, in %.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use gst::prelude::*;

#[derive(Parser)]
#[command(name = "veil-soak", version)]
struct Cli {
    /// The clip, looped by segment seeks (running time keeps growing, as a camera's would).
    #[arg(long)]
    input: PathBuf,
    /// What runs on the decoded frames: a gst-launch-1.0 description without source or sink.
    #[arg(long)]
    chain: String,
    /// Frames to run.
    #[arg(long, default_value_t = 1_000_000)]
    frames: u64,
    /// Resident-memory samples, evenly spaced over the frames.
    #[arg(long, default_value_t = 100)]
    samples: u64,
}

/// The process's resident set (KiB), from `/proc/self/status`.
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

/// Seeks to the start of the clip, as a segment: at its end the pipeline posts SEGMENT_DONE
/// instead of EOS, and the next (non-flushing) segment seek plays it again without a seam.
fn loop_seek(pipeline: &gst::Pipeline, flush: bool) -> anyhow::Result<()> {
    let mut flags = gst::SeekFlags::SEGMENT;
    if flush {
        flags |= gst::SeekFlags::FLUSH;
    }
    pipeline
        .seek_simple(flags, gst::ClockTime::ZERO)
        .context("the clip cannot be seeked (a format without an index?)")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    gst::init()?;
    veil_meta::status::register();
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! {} ! fakesink name=soak_end sync=false",
        cli.input.display(),
        cli.chain
    );
    let pipeline = gst::parse::launch(&description)
        .context("the chain does not parse")?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let frames = Arc::new(AtomicU64::new(0));
    let counted = frames.clone();
    pipeline
        .by_name("soak_end")
        .and_then(|e| e.static_pad("sink"))
        .context("no sink pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().context("no bus")?;
    pipeline.set_state(gst::State::Paused)?;
    if pipeline.state(gst::ClockTime::from_seconds(60)).0.is_err() {
        bail!("the pipeline does not preroll");
    }
    loop_seek(&pipeline, true)?;
    pipeline.set_state(gst::State::Playing)?;
    let started = Instant::now();
    let every = (cli.frames / cli.samples.max(1)).max(1);
    let mut next_sample = every;
    let (mut at_tenth, mut at_end) = (None, None);
    while at_end.is_none() {
        for msg in bus.iter_timed(gst::ClockTime::from_mseconds(50)) {
            match msg.view() {
                gst::MessageView::SegmentDone(_) => loop_seek(&pipeline, false)?,
                gst::MessageView::Error(e) => {
                    let _ = pipeline.set_state(gst::State::Null);
                    bail!("{} ({:?})", e.error(), e.debug());
                }
                gst::MessageView::Eos(_) => {
                    let _ = pipeline.set_state(gst::State::Null);
                    bail!("the clip ended instead of looping");
                }
                _ => {}
            }
        }
        let n = frames.load(Ordering::Relaxed);
        while n >= next_sample {
            let rss = rss_kib()?;
            println!(
                "{}",
                serde_json::json!({"frames": n, "rss_kib": rss, "elapsed_s": started.elapsed().as_secs_f64()})
            );
            if at_tenth.is_none() && n >= cli.frames / 10 {
                at_tenth = Some(rss);
            }
            if n >= cli.frames {
                at_end = Some(rss);
            }
            next_sample += every;
        }
    }
    pipeline.set_state(gst::State::Null)?;
    let (tenth, end) = (at_tenth.unwrap_or(0), at_end.unwrap_or(0));
    let n = frames.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "summary": true,
            "frames": n,
            "seconds": started.elapsed().as_secs_f64(),
            "frames_per_s": n as f64 / started.elapsed().as_secs_f64(),
            "rss_kib_at_10pct": tenth,
            "rss_kib_at_100pct": end,
            "growth_pct": if tenth > 0 { (end as f64 - tenth as f64) / tenth as f64 * 100.0 } else { 0.0 },
        })
    );
    Ok(())
}
