// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading what the Veil elements attached to frames coming out of a pipeline.

use gst::prelude::*;
use veil_meta::{Detection, StatusMeta};

/// One frame's metadata, as seen at the end of a pipeline.
#[derive(Debug, Clone)]
pub struct FrameRecord {
    pub index: u64,
    pub pts: Option<gst::ClockTime>,
    pub width: u32,
    pub height: u32,
    pub statuses: Vec<StatusMeta>,
    pub detections: Vec<Detection>,
}

impl FrameRecord {
    pub fn from_sample(index: u64, sample: &gst::Sample) -> anyhow::Result<Self> {
        let buffer = sample
            .buffer()
            .ok_or_else(|| anyhow::anyhow!("sample without buffer"))?;
        let caps = sample
            .caps()
            .ok_or_else(|| anyhow::anyhow!("sample without caps"))?;
        let info = gst_video::VideoInfo::from_caps(caps)?;
        Ok(FrameRecord {
            index,
            pts: buffer.pts(),
            width: info.width(),
            height: info.height(),
            statuses: StatusMeta::all(buffer),
            detections: Detection::all(buffer, info.width(), info.height()),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let dets: Vec<serde_json::Value> = self
            .detections
            .iter()
            .map(|d| {
                let b = d.bbox;
                let mut v = serde_json::json!({
                    "label": d.label,
                    "confidence": (d.confidence * 1000.0).round() / 1000.0,
                    "box_px": [
                        (b.x_min * self.width as f64).round(), (b.y_min * self.height as f64).round(),
                        (b.x_max * self.width as f64).round(), (b.y_max * self.height as f64).round(),
                    ],
                });
                if let Some(id) = d.object_id {
                    v["track"] = id.into();
                }
                if let Some(lm) = &d.landmarks {
                    v["landmarks_px"] = lm
                        .points
                        .iter()
                        .map(|&(x, y)| serde_json::json!([(x * self.width as f64).round(), (y * self.height as f64).round()]))
                        .collect();
                }
                v
            })
            .collect();
        serde_json::json!({
            "frame": self.index,
            "pts_ms": self.pts.map(|p| p.mseconds()),
            "inference": self.statuses.iter().map(|s| serde_json::json!({
                "element": s.element, "model": s.model, "status": s.status.as_str()
            })).collect::<Vec<_>>(),
            "detections": dets,
        })
    }
}

/// Runs `description` (a `gst-launch-1.0` style description without a sink) to EOS into an
/// appsink and returns every frame's metadata, calling `each` as frames arrive.
pub fn run_pipeline(
    description: &str,
    mut each: impl FnMut(&FrameRecord),
) -> anyhow::Result<Vec<FrameRecord>> {
    let mut frames = Vec::new();
    for_each_sample(description, |sample| {
        let rec = FrameRecord::from_sample(frames.len() as u64, sample)?;
        each(&rec);
        frames.push(rec);
        Ok(())
    })?;
    Ok(frames)
}

/// Runs `description` (without a sink) to EOS and returns every sample that reached the end,
/// pixels and metas included.
pub fn run_pipeline_samples(description: &str) -> anyhow::Result<Vec<gst::Sample>> {
    let mut samples = Vec::new();
    for_each_sample(description, |sample| {
        samples.push(sample.clone());
        Ok(())
    })?;
    Ok(samples)
}

/// Runs `description` into an appsink, handing every sample to `f`; fails with the pipeline's
/// error message if it posted one.
fn for_each_sample(
    description: &str,
    mut f: impl FnMut(&gst::Sample) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    gst::init()?;
    veil_meta::status::register();
    let pipeline =
        gst::parse::launch(&format!("{description} ! appsink name=veil_out sync=false"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("veil_out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| anyhow::anyhow!("no appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or_else(|| anyhow::anyhow!("no bus"))?;
    let mut result = Ok(());
    // The appsink waits for ever on a pipeline that failed before its end (e.g. caps that do not
    // negotiate), so between samples the bus is asked for an error.
    let mut error = loop {
        match sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            Some(sample) => {
                if let Err(e) = f(&sample) {
                    result = Err(e);
                    break None;
                }
            }
            None if sink.is_eos() => break None,
            None => {
                if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
                    break error_of(&msg);
                }
            }
        }
    };
    if error.is_none() {
        error = bus.iter().find_map(|msg| error_of(&msg));
    }
    pipeline.set_state(gst::State::Null)?;
    match error {
        Some(e) => Err(e),
        None => result,
    }
}

/// The error an error message carries, named by the element that posted it.
fn error_of(msg: &gst::Message) -> Option<anyhow::Error> {
    match msg.view() {
        gst::MessageView::Error(err) => Some(anyhow::anyhow!(
            "{}: {}{}",
            err.src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default(),
            err.error(),
            err.debug().map(|d| format!(" ({d})")).unwrap_or_default()
        )),
        _ => None,
    }
}

/// The pixels of an RGB sample as packed rows (no stride padding), with width and height.
pub fn packed_rgb(sample: &gst::Sample) -> anyhow::Result<(Vec<u8>, u32, u32)> {
    use gst_video::prelude::*;
    let info =
        gst_video::VideoInfo::from_caps(sample.caps().ok_or_else(|| anyhow::anyhow!("no caps"))?)?;
    anyhow::ensure!(
        info.format() == gst_video::VideoFormat::Rgb,
        "expected RGB, got {:?}",
        info.format()
    );
    let buffer = sample
        .buffer()
        .ok_or_else(|| anyhow::anyhow!("no buffer"))?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|_| anyhow::anyhow!("cannot map the frame"))?;
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0)?;
    let row = info.width() as usize * 3;
    let mut out = Vec::with_capacity(row * info.height() as usize);
    for y in 0..info.height() as usize {
        out.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    Ok((out, info.width(), info.height()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_that_fails_before_its_end_returns_its_error_instead_of_waiting() {
        // videoflip has no 4:2:2 planar format: without a converter the caps cannot negotiate.
        let source = "videotestsrc num-buffers=3 ! video/x-raw,format=Y42B,width=64,height=48";
        let control = run_pipeline_samples(&format!("{source} ! videoconvert ! videoflip"));
        assert_eq!(control.map(|s| s.len()).ok(), Some(3), "control");
        let failed = run_pipeline_samples(&format!("{source} ! videoflip"));
        let error = failed.expect_err("not negotiated").to_string();
        assert!(error.contains("videotestsrc"), "{error}");
    }
}
