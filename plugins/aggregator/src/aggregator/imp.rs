// SPDX-License-Identifier: MIT OR Apache-2.0
//! The aggregator element: glue only. It reads the ROI metas into [`Object`]s, keeps capture
//! time, hands each frame to the analysis its settings chose ([`Plan`]), writes the ephemeral
//! track ids back into the ROIs and sends what the analysis returns downstream and to the bus.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoRegionOfInterestMeta;
use veil_meta::element::{self, VideoCaps};
use veil_meta::events::{self, Event};
use veil_meta::time::{Timeline, now_ns};

use super::settings::{self, Settings};
use crate::analysis::{Analysis, Frame, FramePixels, Object, Plan};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    element::debug_category(
        "aggregator",
        "Veil aggregator: audience metrics, visual inspection or action compliance",
    )
});

/// Params every ROI may carry that are not classifier results.
const NON_CLASS_PARAMS: [&str; 3] = ["detection", "object_id", "landmarks"];

struct State {
    analysis: Box<dyn Analysis>,
    timeline: Timeline,
    /// The first frame's capture time when a `start-time` is set.
    fixed_start_ns: Option<u64>,
    /// Whether upstream is live (asked once, at the first frame).
    live: Option<bool>,
    last_pts: Option<u64>,
    last_running_ns: u64,
    last_capture_ns: u64,
}

#[derive(Default)]
pub struct Aggregator {
    settings: Mutex<Settings>,
    caps: VideoCaps,
    state: Mutex<Option<State>>,
}

/// The frame's ROI metas as the analyses read them.
fn objects(buf: &gst::BufferRef, info: &gst_video::VideoInfo) -> Vec<Object> {
    let (w, h) = (info.width(), info.height());
    buf.iter_meta::<VideoRegionOfInterestMeta>()
        .enumerate()
        .map(|(roi, meta)| {
            let d = veil_meta::Detection::from_roi(&meta, w, h);
            Object {
                roi,
                landmarks_px: d.landmarks.as_ref().map(|lm| {
                    lm.points
                        .iter()
                        .map(|&(x, y)| (x * w as f64, y * h as f64))
                        .collect()
                }),
                bbox: [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max],
                confidence: d.confidence,
                label: d.label,
                classes: meta
                    .params()
                    .filter(|p| !NON_CLASS_PARAMS.contains(&p.name().as_str()))
                    .filter_map(|p| {
                        Some((
                            p.name().to_string(),
                            p.get::<String>("label").ok()?,
                            p.get::<f64>("confidence").ok(),
                        ))
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The buffer's pixels, converted to RGB and JPEG-encoded only when an analysis asks.
struct BufferPixels<'a> {
    buf: &'a gst::BufferRef,
    info: &'a gst_video::VideoInfo,
}

impl FramePixels for BufferPixels<'_> {
    fn jpeg(&self, quality: u8) -> Result<(Vec<u8>, u32, u32), String> {
        let (info, (w, h)) = (self.info, (self.info.width(), self.info.height()));
        let rgb_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
            .build()
            .map_err(|e| e.to_string())?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(self.buf, info)
            .map_err(|_| "cannot map the frame".to_string())?;
        let mut rgb_buf = gst::Buffer::with_size(rgb_info.size()).map_err(|e| e.to_string())?;
        {
            let rgb_mut = rgb_buf.get_mut().ok_or("buffer not writable")?;
            let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(rgb_mut, &rgb_info)
                .map_err(|_| "cannot map the RGB frame".to_string())?;
            // The converter refuses framerate and interlacing changes: match the output's.
            let in_info = if info.fps() != rgb_info.fps()
                || info.interlace_mode() != rgb_info.interlace_mode()
            {
                gst_video::VideoInfo::builder(info.format(), w, h)
                    .colorimetry(&info.colorimetry())
                    .build()
                    .map_err(|e| e.to_string())?
            } else {
                info.clone()
            };
            gst_video::VideoConverter::new(&in_info, &rgb_info, None)
                .map_err(|e| e.to_string())?
                .frame_ref(&frame, &mut out);
        }
        let map = rgb_buf.map_readable().map_err(|e| e.to_string())?;
        let stride = rgb_info.stride()[0] as usize;
        let mut packed = Vec::with_capacity((w * h * 3) as usize);
        for row in 0..h as usize {
            packed.extend_from_slice(&map[row * stride..row * stride + w as usize * 3]);
        }
        Ok((crate::images::encode_jpeg(&packed, w, h, quality)?, w, h))
    }
}

impl Aggregator {
    /// Whether upstream is a live source (the latency query's answer; not live when nobody
    /// answers).
    fn upstream_is_live(&self) -> bool {
        let mut query = gst::query::Latency::new();
        self.obj().sink_pad().peer_query(&mut query) && query.result().0
    }

    /// The pipeline clock's running time now (ns), when the element has a clock.
    fn clock_running_ns(&self) -> Option<u64> {
        let element = self.obj();
        let now = element.clock()?.time();
        Some(now.checked_sub(element.base_time()?)?.nseconds())
    }

    /// Posts an event on the bus and sends it downstream (for auditsink), with the PTS of the
    /// frame that produced it. Called without the state lock held.
    fn emit(&self, pts: Option<u64>, event: &Event) {
        let mut s = events::to_structure(event);
        if let Some(pts) = pts {
            s.set("pts", pts);
        }
        let _ = self.obj().post_message(
            gst::message::Element::builder(s.clone())
                .src(&*self.obj())
                .build(),
        );
        if !self
            .obj()
            .src_pad()
            .push_event(gst::event::CustomDownstream::new(s))
        {
            gst::debug!(
                CAT,
                imp = self,
                "downstream did not take a {}",
                event.name()
            );
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for Aggregator {
    const NAME: &'static str = "GstVeilAggregator";
    type Type = super::Aggregator;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for Aggregator {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.settings.lock().unwrap().set(pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.settings.lock().unwrap().get(pspec.name())
    }
}

impl GstObjectImpl for Aggregator {}

impl ElementImpl for Aggregator {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Veil aggregator",
                "Filter/Analyzer/Video",
                "One of three analyses, chosen by its settings: audience metrics per UTC-aligned window \
                 (people tracked with ephemeral ids, motion only), visual inspection (OK/NG per part) or \
                 action compliance (step sequences); emits custom downstream events and element messages",
                "Veil developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/x-raw").build();
            element::in_place_pad_templates(&caps)
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for Aggregator {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let plan: Plan = settings.plan()?;
        let fixed_start = element::start_time_setting(settings.start_time.as_deref())?;
        gst::info!(CAT, imp = self, "running the {} analysis", plan.name());
        *self.state.lock().unwrap() = Some(State {
            analysis: plan.start(),
            timeline: Timeline::new((settings.max_gap_s * 1e9) as u64),
            fixed_start_ns: fixed_start,
            live: None,
            last_pts: None,
            last_running_ns: 0,
            last_capture_ns: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        self.caps.set(*CAT, incaps).map(|_| ())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            let flushed = self.state.lock().unwrap().as_mut().map(|state| {
                let events = state.analysis.finish(state.last_capture_ns);
                (state.last_pts, events)
            });
            if let Some((pts, events)) = flushed {
                for e in &events {
                    self.emit(pts, e);
                }
            }
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(info) = self.caps.get() else {
            return Err(element::not_negotiated(&*self.obj()));
        };
        let pts = buf.pts().map(|p| p.nseconds()).unwrap_or(0);
        let running = buf.pts().and_then(|p| {
            self.obj()
                .segment()
                .downcast_ref::<gst::ClockTime>()
                .and_then(|s| s.to_running_time(p))
                .map(|r| r.nseconds())
        });
        let objects = objects(buf, &info);
        // What a break in time closed, sent before the frame's own events.
        let mut broken = Vec::new();
        let (out, pts) = {
            let mut guard = self.state.lock().unwrap();
            let Some(state) = guard.as_mut() else {
                return Err(element::not_negotiated(&*self.obj()));
            };
            let live = *state.live.get_or_insert_with(|| self.upstream_is_live());
            let running_ns = running.unwrap_or(state.last_running_ns);
            // For a live source, the pipeline clock: when the frame arrived, and UTC.
            let clock_ns = live.then(|| self.clock_running_ns()).flatten();
            let fixed = state.fixed_start_ns;
            let (capture_ns, brk) = state.timeline.next(running_ns, clock_ns, || {
                fixed.unwrap_or_else(|| {
                    // A live frame was captured `clock − running` before now.
                    now_ns().saturating_sub(clock_ns.map_or(0, |c| c.saturating_sub(running_ns)))
                })
            });
            if let Some(brk) = &brk {
                gst::warning!(
                    CAT,
                    imp = self,
                    "time discontinuity ({:?}): {:.3} s without analysis",
                    brk.cause,
                    (brk.first_after_ns - brk.last_before_ns) as f64 / 1e9
                );
                broken.push(Event::Discontinuity(brk.to_wire()));
                broken.extend(state.analysis.discontinuity(brk));
            }
            state.last_pts = Some(pts);
            state.last_running_ns = running_ns;
            state.last_capture_ns = capture_ns;
            let frame = Frame {
                capture_ns,
                objects: &objects,
            };
            let out = state
                .analysis
                .frame(&frame, &BufferPixels { buf, info: &info });
            (out, state.last_pts)
        };
        for e in &broken {
            self.emit(pts, e);
        }
        let out = match out {
            Ok(out) => out,
            Err(reason) => {
                gst::element_imp_error!(self, gst::StreamError::Encode, ("{}", reason));
                return Err(gst::FlowError::Error);
            }
        };
        // Ephemeral ids into the ROIs (DL Streamer's object_id param), for downstream elements.
        if !out.object_ids.is_empty() {
            for (index, mut roi) in buf.iter_meta_mut::<VideoRegionOfInterestMeta>().enumerate() {
                if let Some(&(_, id)) = out.object_ids.iter().find(|(r, _)| *r == index) {
                    roi.add_param(
                        gst::Structure::builder("object_id")
                            .field("id", id as i32)
                            .build(),
                    );
                }
            }
        }
        for e in &out.events {
            gst::debug!(CAT, imp = self, "{}", e.name());
            self.emit(pts, e);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
