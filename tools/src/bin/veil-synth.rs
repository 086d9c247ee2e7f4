//! Synthesizes the 1280×720 face clip and its ground truth.
//!
//! usage: veil-synth OUT.mp4   (writes OUT.json beside it; reads the photos from $VEIL_ASSETS)

use anyhow::Context;
use gst::prelude::*;
use gst_video::prelude::*;
use veil_tools::{assets, synth};

/// Loads a crop of a photo, scaled, as packed RGB.
fn load_sprite(s: &synth::SpriteSource) -> anyhow::Result<(Vec<u8>, u32, u32)> {
    let path = assets::path(&format!("media/{}", s.media))?;
    let (cx, cy, cw, ch) = s.crop;
    let (w, h) = (
        (cw as f64 * s.scale).round() as u32,
        (ch as f64 * s.scale).round() as u32,
    );
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         videocrop name=crop ! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
         videoconvert ! video/x-raw,format=RGB ! appsink name=out",
        path.display()
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let crop = pipeline.by_name("crop").context("no videocrop")?;
    // videocrop takes margins; the photo size is needed for right/bottom.
    let (pw, ph) = photo_size(&path)?;
    crop.set_property("left", cx as i32);
    crop.set_property("top", cy as i32);
    crop.set_property("right", (pw - cx - cw) as i32);
    crop.set_property("bottom", (ph - cy - ch) as i32);
    let sink = pipeline
        .by_name("out")
        .context("no appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("not an appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let sample = sink
        .pull_sample()
        .context("no frame decoded from the photo")?;
    pipeline.set_state(gst::State::Null)?;
    let buffer = sample.buffer().context("no buffer")?;
    let info = gst_video::VideoInfo::from_caps(sample.caps().context("no caps")?)?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|_| anyhow::anyhow!("cannot map"))?;
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0)?;
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h as usize {
        rgb.extend_from_slice(&data[y * stride..y * stride + w as usize * 3]);
    }
    Ok((rgb, w, h))
}

/// Decodes the photo once to learn its size.
fn photo_size(path: &std::path::Path) -> anyhow::Result<(u32, u32)> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=out",
        path.display()
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("out")
        .context("no appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("not an appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let sample = sink
        .pull_sample()
        .context("no frame decoded from the photo")?;
    pipeline.set_state(gst::State::Null)?;
    let info = gst_video::VideoInfo::from_caps(sample.caps().context("no caps")?)?;
    Ok((info.width(), info.height()))
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: veil-synth OUT.mp4")?;
    gst::init()?;
    let sprites: Vec<(Vec<u8>, u32, u32)> = synth::SPRITES
        .iter()
        .map(load_sprite)
        .collect::<anyhow::Result<_>>()?;
    let background = synth::background();
    let tmp = format!("{out}.part");
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 ! \
         x264enc speed-preset=faster bitrate=6000 key-int-max=30 ! video/x-h264,profile=high ! \
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
