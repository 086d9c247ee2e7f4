// SPDX-License-Identifier: MIT OR Apache-2.0
//! The GStreamer side of the evaluation: encode a rendered clip, run an anonymization job on it,
//! decode both and score, and add the scores up per condition.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use gst::prelude::*;

use super::image::{Rgb, luma_of};
use super::scene::{ClipSpec, FaceTruth, Renderer};
use super::score::{self, FaceResult, Luma};
use crate::assets;
use crate::frames::{packed_rgb, run_pipeline_samples};

/// Decodes a photo of `$VEIL_ASSETS/media/` to RGB.
pub fn load_photo(media: &str) -> anyhow::Result<Rgb> {
    let path = assets::path(&format!("media/{media}"))?;
    let samples = run_pipeline_samples(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB",
        path.display()
    ))?;
    let (data, w, h) = packed_rgb(samples.first().context("no image decoded")?)?;
    Rgb::from_raw(w, h, data).context("decoded image has the wrong size")
}

/// The ground truth of a clip, as written beside it.
#[derive(Debug, Clone)]
pub struct Truth {
    pub condition: String,
    pub width: u32,
    pub height: u32,
    pub frames: Vec<Vec<FaceTruth>>,
}

impl Truth {
    pub fn read(path: &Path) -> anyhow::Result<Truth> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read ground truth {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let frames = v["frames"]
            .as_array()
            .context("no frames")?
            .iter()
            .map(|f| {
                f["faces"]
                    .as_array()
                    .context("no faces")?
                    .iter()
                    .map(|t| FaceTruth::from_json(t).context("bad face"))
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Truth {
            condition: v["condition"].as_str().unwrap_or_default().to_owned(),
            width: v["width"].as_u64().context("no width")? as u32,
            height: v["height"].as_u64().context("no height")? as u32,
            frames,
        })
    }
}

/// Renders `spec` and encodes it as H.264 in MP4 at `path` (its ground truth as JSON beside
/// it). One encoder thread, so the file is the same on every machine. Skips the work when
/// the files exist and were made from the same spec.
pub fn write_clip(spec: &ClipSpec, path: &Path) -> anyhow::Result<()> {
    let json_path = path.with_extension("json");
    let fingerprint = format!("{:016x}", fingerprint(spec));
    if path.is_file()
        && let Ok(text) = std::fs::read_to_string(&json_path)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && v["fingerprint"] == fingerprint.as_str()
    {
        return Ok(());
    }
    let mut renderer = Renderer::new(spec.clone(), load_photo)?;
    let tmp = path.with_extension("mp4.part");
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 ! \
         x264enc speed-preset=faster bitrate={} key-int-max=30 threads=1 ! \
         video/x-h264,profile=high ! mp4mux ! filesink location=\"{}\"",
        spec.bitrate_kbps,
        tmp.display()
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .context("no appsrc")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| anyhow::anyhow!("not an appsrc"))?;
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, spec.width, spec.height)
        .fps(gst::Fraction::new(spec.fps as i32, 1))
        .build()?;
    src.set_caps(Some(&info.to_caps()?));
    src.set_max_bytes(256 * 1024 * 1024);
    src.set_block(true);
    pipeline.set_state(gst::State::Playing)?;
    let frame_ns = 1_000_000_000u64 / spec.fps as u64;
    let mut truth_frames = Vec::new();
    for i in 0..spec.frames {
        let frame = renderer.frame(i)?;
        truth_frames.push(serde_json::json!({
            "frame": i,
            "faces": frame.faces.iter().map(FaceTruth::to_json).collect::<Vec<_>>(),
            "blink": frame.blink.map(|b| b.name()),
        }));
        let mut buffer = gst::Buffer::from_mut_slice(frame.rgb.data);
        {
            let b = buffer.get_mut().context("buffer not writable")?;
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        src.push_buffer(buffer)?;
    }
    src.end_of_stream()?;
    let bus = pipeline.bus().context("no bus")?;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                anyhow::bail!("encoding {} failed: {}", path.display(), e.error())
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    std::fs::rename(&tmp, path)?;
    let truth = serde_json::json!({
        "condition": spec.condition,
        "split": spec.split,
        "seed": spec.seed,
        "width": spec.width,
        "height": spec.height,
        "fps": spec.fps,
        "background": spec.background,
        "fingerprint": fingerprint,
        "frames": truth_frames,
    });
    std::fs::write(&json_path, serde_json::to_string(&truth)?)?;
    Ok(())
}

/// A hash of everything that decides the clip (FNV-1a over its debug form).
fn fingerprint(spec: &ClipSpec) -> u64 {
    let text = format!("{spec:?} v1");
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A decoded frame's luma plane and the face boxes (pixels) found on it, if a detector ran.
type LumaFrame = (Vec<u8>, Vec<[f64; 4]>);

/// The luma planes of a video file, frame by frame.
fn decode_luma(path: &Path, extra: &str) -> anyhow::Result<Vec<LumaFrame>> {
    let samples = run_pipeline_samples(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB{extra}",
        path.display()
    ))
    .with_context(|| format!("cannot decode {}", path.display()))?;
    samples
        .iter()
        .map(|s| {
            let (rgb, w, h) = packed_rgb(s)?;
            let buffer = s.buffer().context("no buffer")?;
            let (fw, fh) = (w as f64, h as f64);
            let detections = veil_meta::Detection::all(buffer, w, h)
                .iter()
                .map(|d| {
                    [
                        d.bbox.x_min * fw,
                        d.bbox.y_min * fh,
                        d.bbox.x_max * fw,
                        d.bbox.y_max * fh,
                    ]
                })
                .collect();
            Ok((luma_of(&rgb), detections))
        })
        .collect()
}

/// How one job did on one clip.
#[derive(Debug, Clone)]
pub struct ClipScore {
    pub condition: String,
    pub clip: PathBuf,
    pub faces: Vec<FaceResult>,
    pub overmask_changed: u64,
    pub overmask_total: u64,
    pub frames_in: usize,
    pub frames_out: usize,
    /// Wall-clock seconds the job took (0 when not timed).
    pub seconds: f64,
    pub width: u32,
    pub height: u32,
}

/// Scores `output` (what a job made of `clip`) against the clip's ground truth. Re-detection
/// runs CenterFace at threshold 0.5 on the output at full size (at most 1920 wide).
pub fn score_clip(clip: &Path, output: &Path, seconds: f64) -> anyhow::Result<ClipScore> {
    let truth = Truth::read(&clip.with_extension("json"))?;
    let model = assets::path("models/centerface.onnx")?;
    let scale = (1920.0 / truth.width as f64).min(1.0);
    let round32 = |v: f64| ((v / 32.0).ceil() as u32 * 32).max(32);
    let size = format!(
        "{}x{}",
        round32(truth.width as f64 * scale),
        round32(truth.height as f64 * scale)
    );
    let orig = decode_luma(clip, "")?;
    // Some tools pad the frame to their codec's grid (imageio-ffmpeg: multiples of 16);
    // the output is scaled back to the clip's size, so it is judged where the faces were.
    let out = decode_luma(
        output,
        &format!(
            " ! videoscale ! video/x-raw,width={},height={},pixel-aspect-ratio=1/1 ! \
             inferfilter model=\"{}\" threshold=0.5 threads=2 inference-size={size}",
            truth.width,
            truth.height,
            model.display()
        ),
    )?;
    let (w, h) = (truth.width, truth.height);
    let mut faces = Vec::new();
    let (mut changed, mut total) = (0, 0);
    for (i, ((o, _), (a, dets))) in orig.iter().zip(&out).enumerate() {
        anyhow::ensure!(
            a.len() == o.len(),
            "{} has frames of another size than {}",
            output.display(),
            clip.display()
        );
        let (ol, al) = (Luma { data: o, w, h }, Luma { data: a, w, h });
        let truths = truth.frames.get(i).map(Vec::as_slice).unwrap_or_default();
        for t in truths {
            faces.push(score::judge_face(i as u32, t, &ol, &al, dets));
        }
        let (c, n) = score::overmask(&ol, &al, truths);
        changed += c;
        total += n;
    }
    Ok(ClipScore {
        condition: truth.condition,
        clip: clip.to_owned(),
        faces,
        overmask_changed: changed,
        overmask_total: total,
        frames_in: orig.len(),
        frames_out: out.len(),
        seconds,
        width: w,
        height: h,
    })
}

/// Runs a job given as a shell command with `{input}` and `{output}` placeholders, timing it.
/// A job that fails is an error naming the clip and the job's own message.
pub fn run_job(command: &str, input: &Path, output: &Path) -> anyhow::Result<f64> {
    let _ = std::fs::remove_file(output);
    let line = command
        .replace("{input}", &shell_quote(input))
        .replace("{output}", &shell_quote(output));
    let start = Instant::now();
    let result = std::process::Command::new("bash")
        .arg("-c")
        .arg(&line)
        .output()
        .with_context(|| format!("cannot start: {line}"))?;
    let seconds = start.elapsed().as_secs_f64();
    if !result.status.success() {
        let stderr = String::from_utf8_lossy(&result.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        anyhow::bail!(
            "job failed on {} ({}): {}",
            input.display(),
            result.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    anyhow::ensure!(
        output.is_file(),
        "job left no output for {}",
        input.display()
    );
    Ok(seconds)
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Totals over a set of clip scores (one condition, or all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub instances: usize,
    pub judged: usize,
    pub leaked: usize,
    pub unmasked: usize,
    pub redetected: usize,
    pub overmask_changed: u64,
    pub overmask_total: u64,
    pub frames: usize,
    pub seconds: f64,
    pub frame_mismatches: usize,
}

impl Totals {
    pub fn add(&mut self, s: &ClipScore) {
        self.instances += s.faces.len();
        for f in &s.faces {
            if f.judged {
                self.judged += 1;
                self.leaked += f.leaked() as usize;
                self.unmasked += f.unmasked as usize;
                self.redetected += f.redetected as usize;
            }
        }
        self.overmask_changed += s.overmask_changed;
        self.overmask_total += s.overmask_total;
        self.frames += s.frames_in;
        self.seconds += s.seconds;
        self.frame_mismatches += (s.frames_in != s.frames_out) as usize;
    }

    /// Leaked share of the judged instances, in percent.
    pub fn leak_percent(&self) -> f64 {
        100.0 * self.leaked as f64 / self.judged.max(1) as f64
    }

    pub fn overmask_percent(&self) -> f64 {
        100.0 * self.overmask_changed as f64 / self.overmask_total.max(1) as f64
    }

    pub fn fps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.frames as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "instances": self.instances,
            "judged": self.judged,
            "leaked": self.leaked,
            "unmasked": self.unmasked,
            "redetected": self.redetected,
            "leak_percent": self.leak_percent(),
            "overmask_percent": self.overmask_percent(),
            "frames": self.frames,
            "seconds": self.seconds,
            "fps": self.fps(),
            "frame_mismatches": self.frame_mismatches,
        })
    }
}

/// Per-condition totals in [`super::conditions::CONDITIONS`] order, and the overall totals.
pub fn summarize(scores: &[ClipScore]) -> (Vec<(String, Totals)>, Totals) {
    let mut per: Vec<(String, Totals)> = Vec::new();
    let mut all = Totals::default();
    for (name, _) in super::conditions::CONDITIONS {
        let mut t = Totals::default();
        for s in scores.iter().filter(|s| s.condition == name) {
            t.add(s);
            all.add(s);
        }
        if t.instances > 0 || t.frames > 0 {
            per.push((name.to_owned(), t));
        }
    }
    (per, all)
}
