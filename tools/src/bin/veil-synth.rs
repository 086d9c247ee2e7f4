// SPDX-License-Identifier: MIT OR Apache-2.0
//! Synthesizes the 1280×720 face clip and its ground truth.
//!
//! usage: veil-synth OUT.mp4   (writes OUT.json beside it; reads the photos from $VEIL_ASSETS)

use anyhow::Context;
use clap::Parser;
use gst::prelude::*;
use veil_tools::frames::{packed_rgb, run_pipeline_samples};
use veil_tools::{assets, synth};

/// Loads a crop of a photo, scaled, as packed RGB.
fn load_sprite(s: &synth::SpriteSource) -> anyhow::Result<(Vec<u8>, u32, u32)> {
    let path = assets::path(&format!("media/{}", s.media))?;
    let decode = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB",
        path.display()
    );
    // videocrop takes margins, so the photo's size is needed first.
    let photo = run_pipeline_samples(&decode)?;
    let (_, pw, ph) = packed_rgb(photo.first().context("no frame decoded from the photo")?)?;
    let (cx, cy, cw, ch) = s.crop;
    let (w, h) = (
        (cw as f64 * s.scale).round() as u32,
        (ch as f64 * s.scale).round() as u32,
    );
    let sprite = run_pipeline_samples(&format!(
        "{decode} ! videocrop left={cx} top={cy} right={} bottom={} ! videoscale ! \
         video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! videoconvert ! video/x-raw,format=RGB",
        pw - cx - cw,
        ph - cy - ch
    ))?;
    packed_rgb(sprite.first().context("no sprite frame")?)
}

/// Synthesizes the 1280×720 face clip (H.264 in MP4) and writes its ground truth beside it
/// (`OUT.json`); the photos come from `$VEIL_ASSETS/media` (`scripts/setup.sh` fetches them).
#[derive(Parser)]
#[command(name = "veil-synth", version)]
struct Cli {
    /// The clip to write (written to `OUT.part` first, renamed when complete).
    #[arg(value_name = "OUT.mp4")]
    out: String,
}

fn main() -> anyhow::Result<()> {
    let out = Cli::parse().out;
    gst::init()?;
    let sprites: Vec<(Vec<u8>, u32, u32)> = synth::SPRITES
        .iter()
        .map(load_sprite)
        .collect::<anyhow::Result<_>>()?;
    let background = synth::background();
    let tmp = format!("{out}.part");
    // One encoder thread: x264's threading makes the bitstream vary between runs, and the
    // clip is a benchmark asset that must be the same everywhere.
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 ! \
         x264enc speed-preset=faster bitrate=6000 key-int-max=30 threads=1 ! video/x-h264,profile=high ! \
         mp4mux ! filesink location=\"{tmp}\""
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .context("no appsrc")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| anyhow::anyhow!("not an appsrc"))?;
    let info =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, synth::WIDTH, synth::HEIGHT)
            .fps(gst::Fraction::new(synth::FPS as i32, 1))
            .build()?;
    src.set_caps(Some(&info.to_caps()?));
    src.set_max_bytes(64 * 1024 * 1024);
    src.set_block(true);
    pipeline.set_state(gst::State::Playing)?;
    let frame_ns = 1_000_000_000u64 / synth::FPS as u64;
    for i in 0..synth::FRAMES {
        let mut frame = background.clone();
        if synth::faces_visible(i) {
            for (s, (rgb, w, h)) in synth::SPRITES.iter().zip(&sprites) {
                let (x, y) = synth::sprite_position(s, i);
                synth::paste(&mut frame, rgb, *w, *h, x, y);
            }
        }
        if let Some(how) = synth::degradation(i) {
            synth::degrade(&mut frame, how, i as u64);
        }
        let mut buffer = gst::Buffer::from_mut_slice(frame);
        {
            let b = buffer.get_mut().context("buffer not writable")?;
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        src.push_buffer(buffer)?;
    }
    src.end_of_stream()?;
    let bus = pipeline.bus().context("no bus")?;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => anyhow::bail!("encoding failed: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    std::fs::rename(&tmp, &out)?;
    let json_path = std::path::Path::new(&out).with_extension("json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&synth::ground_truth())?,
    )?;
    eprintln!("wrote {out} and {}", json_path.display());
    Ok(())
}
