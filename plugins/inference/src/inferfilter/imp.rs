// SPDX-License-Identifier: MIT OR Apache-2.0
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoRegionOfInterestMeta};

use veil_meta::element::{VideoCaps, string_value};
use veil_meta::roi::FACE_LANDMARK_NAMES;
use veil_meta::{Detection, InferenceStatus, Landmarks, NormalizedBox, StatusMeta};

use super::{Decoder, Direction};
use crate::decoders::{DecoderKind, RawDetection, labels, nms};
use crate::model::Model;
use crate::orientation::Turn;
use crate::preprocess::{
    FrameView, Letterbox, Normalization, PackedFormat, Preprocessor, YuvColor,
};
use crate::tiling::{self, Pass, Plan};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    veil_meta::element::debug_category("inferfilter", "Veil ONNX inference filter")
});

/// -1: the decoder's own default ([`DecoderKind::default_threshold`]).
const DEFAULT_THRESHOLD: f64 = -1.0;
const DEFAULT_NMS_IOU: f64 = -1.0;
const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_THREADS: u32 = 1;
/// The param structure a region's class goes into (DL Streamer's convention: one per model).
const DEFAULT_ATTRIBUTE: &str = "classification";
const DEFAULT_MIN_FACE_SIZE: u32 = 0;
const DEFAULT_TILE_INTERVAL: u32 = 1;
/// Confidence the whole-frame pass needs when tiles run too (see `infer`).
const COARSE_MIN_SCORE: f32 = 0.5;
/// Tiles may enlarge the frame at most this much (a 2× magnification still helps CenterFace
/// on faces below its smallest size; beyond it there is no detail left to find).
const MAX_MAGNIFICATION: f64 = 2.0;

const SUPPORTED_FORMATS: [VideoFormat; 7] = [
    VideoFormat::Rgb,
    VideoFormat::Rgba,
    VideoFormat::Bgrx,
    VideoFormat::Bgra,
    VideoFormat::I420,
    VideoFormat::Nv12,
    // Infrared and night cameras; each grey value feeds the model's three channels.
    VideoFormat::Gray8,
];

#[derive(Debug, Clone)]
struct Settings {
    model: Option<PathBuf>,
    decoder: Decoder,
    labels_file: Option<PathBuf>,
    labels: Option<String>,
    keep_labels: Option<String>,
    threshold: f64,
    nms_iou: f64,
    inference_size: Option<String>,
    interval: u32,
    threads: u32,
    mean: Option<String>,
    std: Option<String>,
    roi_label: Option<String>,
    attribute: String,
    min_face_size: u32,
    tile_size: Option<String>,
    tile_interval: u32,
    direction: Direction,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: None,
            decoder: Decoder::default(),
            labels_file: None,
            labels: None,
            keep_labels: None,
            threshold: DEFAULT_THRESHOLD,
            nms_iou: DEFAULT_NMS_IOU,
            inference_size: None,
            interval: DEFAULT_INTERVAL,
            threads: DEFAULT_THREADS,
            mean: None,
            std: None,
            roi_label: None,
            attribute: DEFAULT_ATTRIBUTE.into(),
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            tile_size: None,
            tile_interval: DEFAULT_TILE_INTERVAL,
            direction: Direction::default(),
        }
    }
}

/// Everything needed to run, prepared at `start` from the settings.
struct State {
    model: Model,
    model_name: String,
    decoder: DecoderKind,
    labels: Vec<String>,
    /// Per class id: whether detections of it are kept.
    keep: Vec<bool>,
    /// Labels this instance can attach (reported in the status meta).
    produced_labels: Vec<String>,
    threshold: f32,
    nms_iou: f32,
    interval: u32,
    norm: Normalization,
    requested_size: Option<(u32, u32)>,
    preprocessor: Preprocessor,
    tensor: Vec<f32>,
    /// Set by `set_caps`.
    video: Option<VideoSetup>,
    frames: u64,
    frames_since_run: u32,
    /// The last frame's PTS (ns), to see breaks in time.
    last_pts: Option<u64>,
    /// Second stage: classify each region of this label (classifier decoder only).
    roi_label: Option<String>,
    /// Name of the param structure a region's class goes into.
    attribute: String,
    /// Smallest object to find, frame pixels (0: what the whole-frame pass sees).
    min_face_size: u32,
    /// Model input of a tile (default: fitted to the frame).
    tile_size: Option<(u32, u32)>,
    /// Tiles run on every Nth analysed frame.
    tile_interval: u32,
    /// Analysed frames so far (decides the tile frames).
    analysed: u64,
    /// How the picture is turned before the model sees it.
    turn: Turn,
}

struct VideoSetup {
    info: gst_video::VideoInfo,
    /// The model runs that cover a frame: the whole frame, and tiles if asked for.
    plan: Plan,
    color: YuvColor,
}

#[derive(Default)]
pub struct InferFilter {
    settings: Mutex<Settings>,
    caps: VideoCaps,
    state: Mutex<Option<State>>,
}

fn parse_size(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.trim().split_once(['x', 'X'])?;
    let (w, h) = (w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?);
    (w > 0 && h > 0 && w <= 8192 && h <= 8192).then_some((w, h))
}

fn parse_triplet(text: &str) -> Option<[f32; 3]> {
    let v: Vec<f32> = text
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .ok()?;
    <[f32; 3]>::try_from(v).ok()
}

impl InferFilter {
    /// How frames of `info` go through the model: the whole-frame input size and the tiles.
    fn video_setup(&self, state: &State, info: gst_video::VideoInfo) -> VideoSetup {
        // The model sees the picture turned upright.
        let (w, h) = state.turn.size(info.width(), info.height());
        let (model_w, model_h) = match (state.requested_size, state.model.fixed_input_size()) {
            (Some(size), _) | (None, Some(size)) => size,
            // With tiles for the small faces, the whole-frame pass only has to see the large
            // ones: a coarse pass is enough.
            (None, None) if state.min_face_size > 0 => tiling::coarse_size(w, h),
            (None, None) => state.decoder.default_input_size(w, h),
        };
        let colorimetry = info.colorimetry();
        let color = YuvColor {
            bt709: colorimetry.matrix() == gst_video::VideoColorMatrix::Bt709,
            full_range: colorimetry.range() == gst_video::VideoColorRange::Range0_255,
        };
        gst::debug!(
            CAT,
            imp = self,
            "{}x{} {} → model input {}x{}",
            info.width(),
            info.height(),
            info.format().to_str(),
            model_w,
            model_h
        );
        VideoSetup {
            plan: Plan::new(
                w,
                h,
                (model_w, model_h),
                state.min_face_size as f64,
                state.decoder.smallest_object(),
                state.tile_size,
                MAX_MAGNIFICATION,
            ),
            info,
            color,
        }
    }

    /// Builds the run-time state from the settings; every configuration error surfaces here,
    /// at the READY→PAUSED state change, with a message naming the cause.
    fn prepare(&self, settings: &Settings) -> Result<State, gst::ErrorMessage> {
        let path = settings.model.clone().ok_or_else(|| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No model set: set the 'model' property to an ONNX file")
            )
        })?;
        let decoder = match settings.decoder {
            Decoder::CenterFace => DecoderKind::CenterFace,
            Decoder::NanoDet => DecoderKind::NanoDet,
            Decoder::Ssd => DecoderKind::Ssd,
            Decoder::Classifier => DecoderKind::Classifier,
        };
        if settings.roi_label.is_some() && decoder != DecoderKind::Classifier {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("roi-label classifies regions: it needs decoder=classifier")
            ));
        }
        let model = Model::load(&path, settings.threads as usize).map_err(|e| match e {
            crate::model::ModelError::Unreadable { .. } => {
                gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e))
            }
            _ => gst::error_msg!(gst::LibraryError::Init, ("{}", e)),
        })?;
        decoder.check_outputs(model.outputs()).map_err(|e| {
            gst::error_msg!(
                gst::LibraryError::Settings,
                ("Model '{}': {}", path.display(), e)
            )
        })?;

        let labels = if let Some(list) = &settings.labels {
            labels::parse_list(list)
        } else if let Some(file) = &settings.labels_file {
            veil_meta::element::read_config_file("labels-file", file, |text| {
                Ok(labels::parse_labels(text))
            })?
        } else {
            decoder.default_labels()
        };
        if labels.is_empty() {
            return Err(if decoder == DecoderKind::Classifier {
                gst::error_msg!(
                    gst::LibraryError::Settings,
                    ("A classifier needs its class names: set labels (e.g. 'ok,ng') or labels-file")
                )
            } else {
                gst::error_msg!(gst::LibraryError::Settings, ("The label list is empty"))
            });
        }
        let keep: Vec<bool> = match &settings.keep_labels {
            None => vec![true; labels.len()],
            Some(list) => {
                let wanted = labels::parse_list(list);
                if let Some(unknown) = wanted.iter().find(|w| !labels.contains(w)) {
                    return Err(gst::error_msg!(
                        gst::LibraryError::Settings,
                        (
                            "keep-labels names '{}', which is not one of the model's labels",
                            unknown
                        )
                    ));
                }
                labels.iter().map(|l| wanted.contains(l)).collect()
            }
        };
        let produced_labels = labels
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(l, _)| l.clone())
            .collect();

        let requested_size = match &settings.inference_size {
            None => None,
            Some(text) => Some(parse_size(text).ok_or_else(|| {
                gst::error_msg!(
                    gst::LibraryError::Settings,
                    (
                        "Invalid inference-size '{}': expected WIDTHxHEIGHT, e.g. 640x384",
                        text
                    )
                )
            })?),
        };
        let tile_size = match &settings.tile_size {
            None => None,
            Some(text) => Some(parse_size(text).ok_or_else(|| {
                gst::error_msg!(
                    gst::LibraryError::Settings,
                    (
                        "Invalid tile-size '{}': expected WIDTHxHEIGHT, e.g. 320x320",
                        text
                    )
                )
            })?),
        };
        if settings.min_face_size > 0 && model.fixed_input_size().is_some() && tile_size.is_some() {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("tile-size needs a model with a dynamic input size; this one is fixed")
            ));
        }
        if settings.min_face_size > 0 && settings.roi_label.is_some() {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("min-face-size applies to detectors, not to a second-stage classifier (roi-label)")
            ));
        }
        if let (Some(req), Some(fixed)) = (requested_size, model.fixed_input_size())
            && req != fixed
        {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "inference-size {}x{} requested, but the model's input is fixed at {}x{}",
                    req.0,
                    req.1,
                    fixed.0,
                    fixed.1
                )
            ));
        }
        let mut norm = decoder.default_normalization();
        for (name, text, target) in [
            ("mean", &settings.mean, &mut norm.mean),
            ("std", &settings.std, &mut norm.std),
        ] {
            if let Some(text) = text {
                *target = parse_triplet(text).ok_or_else(|| {
                    gst::error_msg!(
                        gst::LibraryError::Settings,
                        (
                            "Invalid {} '{}': expected three numbers, e.g. 0,0,0",
                            name,
                            text
                        )
                    )
                })?;
            }
        }
        if norm.std.contains(&0.0) {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("std must not contain 0")
            ));
        }
        let nms_iou = if settings.nms_iou < 0.0 {
            decoder.default_nms_iou()
        } else {
            settings.nms_iou as f32
        };
        Ok(State {
            model_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            model,
            decoder,
            labels,
            keep,
            produced_labels,
            threshold: if settings.threshold < 0.0 {
                decoder.default_threshold()
            } else {
                settings.threshold as f32
            },
            nms_iou,
            interval: settings.interval.max(1),
            norm,
            requested_size,
            preprocessor: Preprocessor::new(),
            tensor: Vec::new(),
            video: None,
            frames: 0,
            frames_since_run: 0,
            last_pts: None,
            roi_label: settings.roi_label.clone(),
            attribute: settings.attribute.clone(),
            min_face_size: settings.min_face_size,
            tile_size,
            tile_interval: settings.tile_interval.max(1),
            analysed: 0,
            turn: match settings.direction {
                Direction::Identity => Turn::None,
                Direction::Clockwise => Turn::Clockwise,
                Direction::Half => Turn::Half,
                Direction::CounterClockwise => Turn::CounterClockwise,
            },
        })
    }

    fn status(&self, state: &State, status: InferenceStatus, age: u32) -> StatusMeta {
        StatusMeta {
            status,
            model: state.model_name.clone(),
            element: self.obj().name().to_string(),
            labels: state.produced_labels.clone(),
            age,
        }
    }
}

/// The mapped frame as the pre-processor reads it.
fn frame_view<'a>(
    frame: &'a gst_video::VideoFrameRef<&'a gst::BufferRef>,
    video: &VideoSetup,
) -> Result<FrameView<'a>, InferError> {
    let plane = |i: u32| -> Result<(&'a [u8], usize), InferError> {
        let data = frame
            .plane_data(i)
            .map_err(|_| InferError::Fatal(format!("frame has no plane {i}")))?;
        Ok((data, frame.plane_stride()[i as usize] as usize))
    };
    Ok(match video.info.format() {
        VideoFormat::I420 => FrameView::I420 {
            y: plane(0)?,
            u: plane(1)?,
            v: plane(2)?,
            color: video.color,
        },
        VideoFormat::Nv12 => FrameView::Nv12 {
            y: plane(0)?,
            uv: plane(1)?,
            color: video.color,
        },
        other => {
            let format = match other {
                VideoFormat::Rgb => PackedFormat::Rgb,
                VideoFormat::Rgba => PackedFormat::Rgba,
                VideoFormat::Bgrx => PackedFormat::Bgrx,
                VideoFormat::Gray8 => PackedFormat::Gray8,
                _ => PackedFormat::Bgra,
            };
            let (data, stride) = plane(0)?;
            FrameView::Packed {
                format,
                data,
                stride,
            }
        }
    })
}

/// What a pass of the model needs besides the frame: shared by the whole-frame pass and the
/// tiles.
struct Runner<'a> {
    model: &'a mut Model,
    preprocessor: &'a mut Preprocessor,
    tensor: &'a mut Vec<f32>,
    norm: &'a Normalization,
    decoder: DecoderKind,
    threshold: f32,
    keep: &'a [bool],
}

/// Most tiles put through the model in one run (bounds the batch tensor's memory).
const MAX_BATCH: usize = 8;

impl Runner<'_> {
    /// Runs `passes` (all of one model input size) and returns what they found, in frame
    /// pixels. Passes go through the model together when it takes batches.
    fn run(&mut self, view: &FrameView, passes: &[Pass]) -> Result<Vec<RawDetection>, InferError> {
        let Some(first) = passes.first() else {
            return Ok(Vec::new());
        };
        let (mw, mh) = (first.model_w, first.model_h);
        let per_image = (3 * mw * mh) as usize;
        let batch = if self.model.batchable() { MAX_BATCH } else { 1 };
        let (decoder, threshold) = (self.decoder, self.threshold);
        let keep = self.keep;
        let keep_fn = |c: usize| keep.get(c).copied().unwrap_or(false);
        let mut found = Vec::new();
        for group in passes.chunks(batch) {
            self.tensor.resize(per_image * group.len(), 0.0);
            let mut boxes = Vec::with_capacity(group.len());
            for (i, pass) in group.iter().enumerate() {
                let region = view.crop(pass.x, pass.y).ok_or_else(|| {
                    InferError::Fatal(format!("cannot crop at {},{}", pass.x, pass.y))
                })?;
                let lb = Letterbox::new(pass.w, pass.h, mw, mh);
                self.preprocessor
                    .run(
                        &region,
                        &lb,
                        self.norm,
                        &mut self.tensor[i * per_image..(i + 1) * per_image],
                    )
                    .map_err(|e| InferError::Fatal(e.to_string()))?;
                boxes.push(lb);
            }
            let decoded = self
                .model
                .run_batch(self.tensor, group.len(), mw, mh, |_, outputs| {
                    decoder.decode(outputs, mw, mh, threshold, &keep_fn)
                })
                .map_err(|e| InferError::Run(e.to_string()))?;
            for ((raw, pass), lb) in decoded.into_iter().zip(group).zip(&boxes) {
                let raw = raw.map_err(|e| InferError::Fatal(e.to_string()))?;
                found.extend(raw.into_iter().map(|d| to_frame_pixels(d, pass, lb)));
            }
        }
        Ok(found)
    }
}

/// A detection in model-input pixels of `pass` → frame pixels.
fn to_frame_pixels(d: RawDetection, pass: &Pass, lb: &Letterbox) -> RawDetection {
    let (sx, sy) = (
        pass.w as f32 / lb.content_w as f32,
        pass.h as f32 / lb.content_h as f32,
    );
    let (ox, oy) = (pass.x as f32, pass.y as f32);
    RawDetection {
        x0: ox + d.x0 * sx,
        y0: oy + d.y0 * sy,
        x1: ox + d.x1 * sx,
        y1: oy + d.y1 * sy,
        landmarks: d
            .landmarks
            .iter()
            .map(|&(x, y)| (ox + x * sx, oy + y * sy))
            .collect(),
        ..d
    }
}

/// A step in PTS longer than this (ns) is a break in the stream, not a slow frame.
const BREAK_NS: u64 = 1_000_000_000;

/// Whether a frame starts the stream afresh: flagged as a discontinuity (a reconnected source,
/// a seek), or its time went back or jumped more than [`BREAK_NS`].
fn starts_afresh(discont: bool, last_pts: Option<u64>, pts: Option<u64>) -> bool {
    discont
        || last_pts
            .zip(pts)
            .is_some_and(|(last, now)| now < last || now - last > BREAK_NS)
}

impl InferFilter {
    /// Pre-processes the frame and runs the model over the plan's passes (the whole frame, and
    /// tiles when faces smaller than the whole-frame pass sees are asked for); returns the
    /// detections, merged across passes.
    fn infer(&self, state: &mut State, buf: &gst::BufferRef) -> Result<Vec<Detection>, InferError> {
        let State {
            model,
            preprocessor,
            tensor,
            norm,
            decoder,
            threshold,
            keep,
            nms_iou,
            video,
            labels,
            tile_interval,
            analysed,
            turn,
            ..
        } = state;
        let with_tiles = *analysed % *tile_interval as u64 == 0;
        *analysed += 1;
        let video = video.as_ref().ok_or(InferError::Fatal(
            "no caps set before the first buffer".into(),
        ))?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &video.info)
            .map_err(|_| InferError::Fatal("cannot map the video frame for reading".into()))?;
        let as_is = frame_view(&frame, video)?;
        let (fw, fh) = (video.info.width(), video.info.height());
        let mut planes: [Vec<u8>; 3] = Default::default();
        let view = turned(&as_is, *turn, fw, fh, &mut planes)?;
        let mut runner = Runner {
            model,
            preprocessor,
            tensor,
            norm,
            decoder: *decoder,
            threshold: *threshold,
            keep,
        };
        let mut found = runner.run(&view, std::slice::from_ref(&video.plan.full))?;
        let raw = if video.plan.tiles.is_empty() {
            nms::nms(found, *nms_iou)
        } else {
            // With tiles, the coarse whole-frame pass only vouches for what it sees clearly:
            // at its low resolution, textures pass for faces at low scores; the tiles look at
            // the same places at full resolution.
            found.retain(|d| d.score >= COARSE_MIN_SCORE.max(*threshold));
            if with_tiles {
                found.extend(runner.run(&view, &video.plan.tiles)?);
            }
            tiling::merge(found, *nms_iou)
        };
        let turn = *turn;
        Ok(raw
            .into_iter()
            .map(|d| turn_back(d, turn, fw, fh))
            .map(|d| to_detection(d, fw as f64, fh as f64, labels))
            .collect())
    }

    /// The second stage: each region labelled `label` cropped, classified, and its class
    /// returned with the region's position among the buffer's ROI metas.
    fn classify_rois(
        &self,
        state: &mut State,
        buf: &gst::BufferRef,
        label: &str,
    ) -> Result<Vec<(usize, String, i32, f64)>, InferError> {
        let video = state.video.as_ref().ok_or(InferError::Fatal(
            "no caps set before the first buffer".into(),
        ))?;
        let (fw, fh) = (video.info.width(), video.info.height());
        let yuv = matches!(video.info.format(), VideoFormat::I420 | VideoFormat::Nv12);
        // Regions in pixels, clamped to the frame (and to the chroma grid for YUV).
        let mut rects = Vec::new();
        for (index, roi) in buf.iter_meta::<VideoRegionOfInterestMeta>().enumerate() {
            if roi.roi_type() != label {
                continue;
            }
            let (x, y, w, h) = roi.rect();
            let (mut x0, mut y0) = (x.min(fw.saturating_sub(2)), y.min(fh.saturating_sub(2)));
            let (mut x1, mut y1) = (x.saturating_add(w).min(fw), y.saturating_add(h).min(fh));
            if yuv {
                (x0, y0) = (x0 & !1, y0 & !1);
                (x1, y1) = (x1 & !1, y1 & !1);
            }
            if x1 >= x0 + 2 && y1 >= y0 + 2 {
                rects.push((index, x0, y0, x1 - x0, y1 - y0));
            }
        }
        let (model_w, model_h) = state
            .requested_size
            .or(state.model.fixed_input_size())
            .unwrap_or((224, 224));
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &video.info)
            .map_err(|_| InferError::Fatal("cannot map the video frame for reading".into()))?;
        let view = frame_view(&frame, video)?;
        let mut out = Vec::new();
        for (index, x0, y0, w, h) in rects {
            let crop = view
                .crop(x0, y0)
                .ok_or_else(|| InferError::Fatal(format!("cannot crop at {x0},{y0}")))?;
            let lb = Letterbox::new(w, h, model_w, model_h);
            state.tensor.resize((3 * model_w * model_h) as usize, 0.0);
            state
                .preprocessor
                .run(&crop, &lb, &state.norm, &mut state.tensor)
                .map_err(|e| InferError::Fatal(e.to_string()))?;
            let (decoder, threshold, keep) = (state.decoder, state.threshold, &state.keep);
            let keep_fn = |c: usize| keep.get(c).copied().unwrap_or(false);
            let raw = state
                .model
                .run(&state.tensor, model_w, model_h, |outputs| {
                    decoder.decode(outputs, model_w, model_h, threshold, &keep_fn)
                })
                .map_err(|e| InferError::Run(e.to_string()))?
                .map_err(|e| InferError::Fatal(e.to_string()))?;
            if let Some(best) = raw.into_iter().next() {
                let name = state
                    .labels
                    .get(best.class)
                    .cloned()
                    .unwrap_or_else(|| format!("class-{}", best.class));
                out.push((index, name, best.class as i32, best.score as f64));
            }
        }
        Ok(out)
    }
}

enum InferError {
    /// This frame's inference failed (marked `failed`); the stream goes on.
    Run(String),
    /// The configuration cannot work (outputs do not fit the decoder, unmappable frames).
    Fatal(String),
}

/// The frame as the model sees it: `view` itself, or turned into `planes`.
fn turned<'a>(
    view: &FrameView<'a>,
    turn: Turn,
    w: u32,
    h: u32,
    planes: &'a mut [Vec<u8>; 3],
) -> Result<FrameView<'a>, InferError> {
    if turn == Turn::None {
        return Ok(*view);
    }
    let fatal = |e: &str| InferError::Fatal(e.to_string());
    let [a, b, c] = planes;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    Ok(match *view {
        FrameView::Packed {
            format,
            data,
            stride,
        } => {
            let bpp = format.bytes_per_pixel();
            let (tw, _) = turn.plane(data, stride, w, h, bpp, a).map_err(fatal)?;
            FrameView::Packed {
                format,
                data: a,
                stride: tw as usize * bpp,
            }
        }
        FrameView::I420 { y, u, v, color } => {
            let (tw, _) = turn.plane(y.0, y.1, w, h, 1, a).map_err(fatal)?;
            let (tcw, _) = turn.plane(u.0, u.1, cw, ch, 1, b).map_err(fatal)?;
            turn.plane(v.0, v.1, cw, ch, 1, c).map_err(fatal)?;
            FrameView::I420 {
                y: (a, tw as usize),
                u: (b, tcw as usize),
                v: (c, tcw as usize),
                color,
            }
        }
        FrameView::Nv12 { y, uv, color } => {
            let (tw, _) = turn.plane(y.0, y.1, w, h, 1, a).map_err(fatal)?;
            let (tcw, _) = turn.plane(uv.0, uv.1, cw, ch, 2, b).map_err(fatal)?;
            FrameView::Nv12 {
                y: (a, tw as usize),
                uv: (b, tcw as usize * 2),
                color,
            }
        }
    })
}

/// A detection in pixels of the turned picture → pixels of the `w`×`h` frame.
fn turn_back(d: RawDetection, turn: Turn, w: u32, h: u32) -> RawDetection {
    let [x0, y0, x1, y1] = turn.box_back([d.x0, d.y0, d.x1, d.y1], w, h);
    RawDetection {
        x0,
        y0,
        x1,
        y1,
        landmarks: d
            .landmarks
            .iter()
            .map(|&(x, y)| turn.back(x, y, w, h))
            .collect(),
        ..d
    }
}

/// A detection in frame pixels → normalized, with its label.
fn to_detection(d: RawDetection, frame_w: f64, frame_h: f64, labels: &[String]) -> Detection {
    let norm = |x: f32, y: f32| (x as f64 / frame_w, y as f64 / frame_h);
    let (x_min, y_min) = norm(d.x0, d.y0);
    let (x_max, y_max) = norm(d.x1, d.y1);
    let landmarks = (!d.landmarks.is_empty()).then(|| Landmarks {
        names: if d.landmarks.len() == FACE_LANDMARK_NAMES.len() {
            FACE_LANDMARK_NAMES.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        },
        points: d.landmarks.iter().map(|&(x, y)| norm(x, y)).collect(),
    });
    Detection {
        label: labels
            .get(d.class)
            .cloned()
            .unwrap_or_else(|| format!("class-{}", d.class)),
        label_id: d.class as i32,
        confidence: d.score as f64,
        bbox: NormalizedBox {
            x_min,
            y_min,
            x_max,
            y_max,
        }
        .clamped(),
        landmarks,
        object_id: None,
    }
}

#[glib::object_subclass]
impl ObjectSubclass for InferFilter {
    const NAME: &'static str = "GstVeilInferFilter";
    type Type = super::InferFilter;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for InferFilter {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Path of the ONNX model file")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("video-direction", Direction::default())
                    .nick("Video direction")
                    .blurb("How the picture is turned before the model sees it, for a camera mounted sideways or upside down (face models are trained upright); detections are mapped back to the frame as it is, which is not changed")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("decoder", Decoder::default())
                    .nick("Decoder")
                    .blurb("How to read the model's outputs (also selects the default pre-processing)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("labels-file")
                    .nick("Labels file")
                    .blurb("File with one label per line (line N names class N); default: the decoder's built-in labels")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("labels")
                    .nick("Labels")
                    .blurb("Comma-separated labels, class 0 first (overrides labels-file)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("roi-label")
                    .nick("Region label")
                    .blurb("Second stage (decoder=classifier): classify each region of this label (cropped) instead of the whole frame; the class goes into the region as a param structure named by 'attribute' (label, label_id, confidence)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("attribute")
                    .nick("Attribute name")
                    .blurb("Name of the param structure a region's class is written to (with roi-label)")
                    .default_value(Some(DEFAULT_ATTRIBUTE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("keep-labels")
                    .nick("Labels to keep")
                    .blurb("Comma-separated labels to attach, e.g. 'person,face'; default: all")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Score threshold")
                    .blurb("Minimum confidence of a detection; -1: the decoder's default (centerface 0.1: candidates for the anonymizer, which starts masks at 0.2 and continues them down to 0.1; others 0.5). Analytics downstream apply their own (the aggregator's high-score)")
                    .minimum(-1.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("nms-iou")
                    .nick("NMS IoU")
                    .blurb("IoU above which overlapping boxes of a class are merged; -1: the decoder's default (0.3 centerface, 0.5 others)")
                    .minimum(-1.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_IOU)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("inference-size")
                    .nick("Inference size")
                    .blurb("Model input size WIDTHxHEIGHT, independent of the frame size (letterboxed); default: the model's fixed size, else the decoder's default width (centerface 640, nanodet 416) with the frame's aspect, rounded up to multiples of 32")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Smallest face")
                    .blurb("Smallest face (object) to find, in frame pixels; when the whole-frame pass cannot see it, the frame is also run in overlapping tiles at the scale that can (0: only the whole-frame pass)")
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tile-size")
                    .nick("Tile size")
                    .blurb("Model input of a tile WIDTHxHEIGHT (with min-face-size); default: as few tiles as cover the frame, each at most 1280 a side")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("tile-interval")
                    .nick("Tile interval")
                    .blurb("Run the tiles (min-face-size) on every Nth analysed frame, the whole-frame pass on every one; a downstream anonymizer holds the small faces found in between")
                    .minimum(1)
                    .default_value(DEFAULT_TILE_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("inference-interval")
                    .nick("Inference interval")
                    .blurb("Run inference on every Nth frame; the others are marked 'skipped'")
                    .minimum(1)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Intra-op threads")
                    .blurb("ONNX Runtime intra-op threads (0: ONNX Runtime's default, one per core)")
                    .maximum(256)
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("mean")
                    .nick("Mean")
                    .blurb("Per-channel mean subtracted from 0-255 pixel values, in the model's channel order, e.g. '103.53,116.28,123.675'; default: the decoder's")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("std")
                    .nick("Std")
                    .blurb("Per-channel divisor applied after the mean, e.g. '57.375,57.12,58.395'; default: the decoder's")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let opt_string = string_value;
        match pspec.name() {
            "model" => s.model = opt_string(value).map(PathBuf::from),
            "decoder" => s.decoder = value.get().expect("type checked upstream"),
            "labels-file" => s.labels_file = opt_string(value).map(PathBuf::from),
            "labels" => s.labels = opt_string(value),
            "keep-labels" => s.keep_labels = opt_string(value),
            "roi-label" => s.roi_label = opt_string(value),
            "attribute" => {
                s.attribute = opt_string(value).unwrap_or_else(|| DEFAULT_ATTRIBUTE.into())
            }
            "threshold" => s.threshold = value.get().expect("type checked upstream"),
            "nms-iou" => s.nms_iou = value.get().expect("type checked upstream"),
            "inference-size" => s.inference_size = opt_string(value),
            "video-direction" => s.direction = value.get().expect("type checked upstream"),
            "inference-interval" => {
                s.interval = value.get().expect("type checked upstream");
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    state.interval = s.interval.max(1);
                }
            }
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "min-face-size" => s.min_face_size = value.get().expect("type checked upstream"),
            "tile-size" => s.tile_size = opt_string(value),
            "tile-interval" => s.tile_interval = value.get().expect("type checked upstream"),
            "mean" => s.mean = opt_string(value),
            "std" => s.std = opt_string(value),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        match pspec.name() {
            "model" => path(&s.model).to_value(),
            "decoder" => s.decoder.to_value(),
            "labels-file" => path(&s.labels_file).to_value(),
            "labels" => s.labels.to_value(),
            "keep-labels" => s.keep_labels.to_value(),
            "roi-label" => s.roi_label.to_value(),
            "attribute" => s.attribute.to_value(),
            "threshold" => s.threshold.to_value(),
            "nms-iou" => s.nms_iou.to_value(),
            "inference-size" => s.inference_size.to_value(),
            "video-direction" => s.direction.to_value(),
            "inference-interval" => s.interval.to_value(),
            "threads" => s.threads.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "tile-size" => s.tile_size.to_value(),
            "tile-interval" => s.tile_interval.to_value(),
            "mean" => s.mean.to_value(),
            "std" => s.std.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for InferFilter {}

impl ElementImpl for InferFilter {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Veil ONNX inference filter",
                "Filter/Analyzer/Video",
                "Runs an ONNX detector (ONNX Runtime) and attaches detections as region-of-interest metas, \
                 plus an inference-status meta on every frame; pixels pass through untouched",
                "Veil developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // The templates accept any raw video so that an unsupported format reaches
            // `set_caps` and fails with a message naming it; `transform_caps` advertises only
            // the supported formats upstream, so converters in front pick one of those.
            let caps = gst::Caps::builder("video/x-raw").build();
            veil_meta::element::in_place_pad_templates(&caps)
        });
        PAD_TEMPLATES.as_ref()
    }
}

fn supported_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(SUPPORTED_FORMATS)
        .build()
}

impl BaseTransformImpl for InferFilter {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let mut state = self.prepare(&settings)?;
        if let Some(info) = self.caps.get() {
            state.video = Some(self.video_setup(&state, info));
        }
        gst::info!(
            CAT,
            imp = self,
            "loaded {} ({} decoder, fixed input {:?})",
            state.model_name,
            state.decoder.name(),
            state.model.fixed_input_size()
        );
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        // In place: the same caps on both sides. Towards upstream, only what we can read.
        let caps = if direction == gst::PadDirection::Src {
            caps.intersect_with_mode(&supported_caps(), gst::CapsIntersectMode::First)
        } else {
            caps.clone()
        };
        Some(match filter {
            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = self.caps.set(*CAT, incaps)?;
        if !SUPPORTED_FORMATS.contains(&info.format()) {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "Unsupported video format {}: inferfilter reads RGB, RGBA, BGRx, BGRA, I420, NV12 and GRAY8 (put videoconvert in front)",
                    info.format().to_str()
                )
            );
            return Err(gst::loggable_error!(
                CAT,
                "unsupported format {}",
                info.format().to_str()
            ));
        }
        // Before start the caps wait in their slot; `start` sets the video up from them.
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.video = Some(self.video_setup(state, info));
        }
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state.lock().unwrap();
        let Some(state) = guard.as_mut().filter(|s| s.video.is_some()) else {
            return Err(veil_meta::element::not_negotiated(&*self.obj()));
        };
        let pts = buf.pts().map(|p| p.nseconds());
        let discont = buf.flags().contains(gst::BufferFlags::DISCONT);
        if starts_afresh(discont, state.last_pts, pts) {
            // The first frame after a break is analysed whatever the interval: when a camera
            // comes back, masking is fresh before its first frame passes (tiles included).
            state.frames = 0;
            state.analysed = 0;
        }
        state.last_pts = pts.or(state.last_pts);
        let run_now = state.frames % state.interval as u64 == 0;
        state.frames += 1;
        if !run_now {
            state.frames_since_run += 1;
            let status = self.status(state, InferenceStatus::Skipped, state.frames_since_run);
            attach_status(buf, &status);
            return Ok(gst::FlowSuccess::Ok);
        }
        state.frames_since_run = 0;
        // Either a second stage (classes into the regions of a label) or a first one (new
        // regions); both end the same way.
        let outcome = match state.roi_label.clone() {
            Some(label) => self.classify_rois(state, buf, &label).map(|classes| {
                for (index, mut roi) in buf.iter_meta_mut::<VideoRegionOfInterestMeta>().enumerate()
                {
                    if let Some((_, name, id, confidence)) = classes.iter().find(|c| c.0 == index) {
                        roi.add_param(
                            gst::Structure::builder(state.attribute.as_str())
                                .field("label", name.as_str())
                                .field("label_id", *id)
                                .field("confidence", *confidence)
                                .build(),
                        );
                    }
                }
            }),
            None => self.infer(state, buf).map(|detections| {
                let (w, h) = state
                    .video
                    .as_ref()
                    .map(|v| (v.info.width(), v.info.height()))
                    .unwrap_or((1, 1));
                for det in &detections {
                    det.attach(buf, w, h);
                }
                gst::trace!(CAT, imp = self, "{} detections", detections.len());
            }),
        };
        match outcome {
            Ok(()) => {
                attach_status(buf, &self.status(state, InferenceStatus::Ran, 0));
                Ok(gst::FlowSuccess::Ok)
            }
            Err(InferError::Run(reason)) => {
                // Marked `failed` so that downstream (the anonymizer) knows nobody looked.
                gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Failed,
                    ("Inference failed: {}", reason)
                );
                attach_status(buf, &self.status(state, InferenceStatus::Failed, 0));
                Ok(gst::FlowSuccess::Ok)
            }
            Err(InferError::Fatal(reason)) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", reason));
                Err(gst::FlowError::Error)
            }
        }
    }
}

fn attach_status(buf: &mut gst::BufferRef, status: &StatusMeta) {
    if let Err(e) = status.attach(buf) {
        gst::warning!(CAT, "cannot attach the inference-status meta: {}", e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_triplets_parse_strictly() {
        assert_eq!(parse_size("640x384"), Some((640, 384)));
        assert_eq!(parse_size(" 512 X 512 "), Some((512, 512)));
        assert_eq!(parse_size("640"), None);
        assert_eq!(parse_size("0x10"), None);
        assert_eq!(parse_triplet("1, 2.5,3"), Some([1.0, 2.5, 3.0]));
        assert_eq!(parse_triplet("1,2"), None);
    }

    #[test]
    fn a_flagged_reset_or_jumped_frame_starts_afresh_and_a_regular_one_does_not() {
        const MS: u64 = 1_000_000;
        assert!(!starts_afresh(false, Some(1_000 * MS), Some(1_066 * MS)));
        assert!(!starts_afresh(false, None, Some(0)));
        assert!(starts_afresh(true, Some(1_000 * MS), Some(1_066 * MS)));
        assert!(starts_afresh(false, Some(30_000 * MS), Some(0)));
        assert!(starts_afresh(false, Some(1_000 * MS), Some(2_001 * MS)));
    }
}
