use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoRegionOfInterestMeta;

use veil_meta::events::{self, Event, InspectionRecord, MetricsWindow};

use crate::attention;
use crate::compliance::{Checker, ComplianceFile, Output as ComplianceOutput};
use crate::inspection::{InspectionFile, Inspector};
use crate::metrics::{AggregatorConfig, Metrics, Observation};
use crate::tracker::{BBox, Tracker, TrackerConfig};
use crate::zones::ZoneConfig;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "aggregator",
        gst::DebugColorFlags::empty(),
        Some("Veil audience aggregator"),
    )
});

const DEFAULT_WINDOW: u32 = 60;
const DEFAULT_PERSON_LABEL: &str = "person";
const DEFAULT_FACE_LABEL: &str = "face";
const DEFAULT_K: u32 = 5;
const DEFAULT_MAX_MISSES: u32 = 30;
const DEFAULT_MIN_HITS: u32 = 3;
const DEFAULT_HIGH_SCORE: f64 = 0.5;
const DEFAULT_LOW_SCORE: f64 = 0.1;
/// Demographic breakdowns need windows at least this long.
const MIN_DEMOGRAPHICS_WINDOW: u32 = 300;

#[derive(Debug, Clone)]
struct Settings {
    window: u32,
    start_time: Option<String>,
    zones_file: Option<PathBuf>,
    person_label: String,
    face_label: String,
    demographics: bool,
    k: u32,
    max_misses: u32,
    min_hits: u32,
    high_score: f64,
    low_score: f64,
    compliance_file: Option<PathBuf>,
    inspection_file: Option<PathBuf>,
    image_retention: super::ImageRetention,
    jpeg_quality: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: DEFAULT_WINDOW,
            start_time: None,
            zones_file: None,
            person_label: DEFAULT_PERSON_LABEL.into(),
            face_label: DEFAULT_FACE_LABEL.into(),
            demographics: false,
            k: DEFAULT_K,
            max_misses: DEFAULT_MAX_MISSES,
            min_hits: DEFAULT_MIN_HITS,
            high_score: DEFAULT_HIGH_SCORE,
            low_score: DEFAULT_LOW_SCORE,
            compliance_file: None,
            inspection_file: None,
            image_retention: super::ImageRetention::None,
            jpeg_quality: 85,
        }
    }
}

struct State {
    settings: Settings,
    tracker: Tracker,
    metrics: Metrics,
    zones: ZoneConfig,
    info: Option<gst_video::VideoInfo>,
    /// Capture time of the first buffer (UTC ns) and its PTS: capture = anchor + (pts − first).
    anchor: Option<(u64, u64)>,
    fixed_start_ns: Option<u64>,
    windows_sent: u64,
    last_pts: Option<u64>,
    /// Action compliance, when a compliance-file is set.
    compliance: Option<(ComplianceFile, Checker)>,
    /// Visual inspection, when an inspection-file is set.
    inspector: Option<Inspector>,
    last_capture_ns: u64,
}

#[derive(Default)]
pub struct Aggregator {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

use veil_meta::time::{now_ns, parse_start_time};

/// Reads and parses an optional configuration file named by property `what`.
fn read_file<T>(
    path: &Option<PathBuf>,
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, gst::ErrorMessage> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        gst::error_msg!(
            gst::ResourceError::OpenRead,
            ("Cannot read {} '{}': {}", what, path.display(), e)
        )
    })?;
    parse(&text).map(Some).map_err(|e| {
        gst::error_msg!(
            gst::LibraryError::Settings,
            ("Invalid {} '{}': {}", what, path.display(), e)
        )
    })
}

/// A person candidate on one frame: the ROIs it came from (their positions among the buffer's
/// ROI metas: ROI ids are not unique, often all 0), its box and score, and whether the face
/// attributed to it is frontal.
struct Candidate {
    rois: Vec<usize>,
    bbox: BBox,
    score: f64,
    frontal: Option<bool>,
    /// Classifier results on its ROIs: (attribute, value).
    attributes: Vec<(String, String)>,
}

/// Params every ROI may carry that are not classifier results.
const NON_ATTRIBUTE_PARAMS: [&str; 3] = ["detection", "object_id", "landmarks"];

/// Classifier results in the DL Streamer convention: any other param structure with a string
/// `label` field is an attribute named after the structure (e.g. `gender` → `female`).
fn attributes(roi: &VideoRegionOfInterestMeta) -> Vec<(String, String)> {
    roi.params()
        .filter(|p| !NON_ATTRIBUTE_PARAMS.contains(&p.name().as_str()))
        .filter_map(|p| Some((p.name().to_string(), p.get::<String>("label").ok()?)))
        .collect()
}

impl Aggregator {
    fn prepare(&self, settings: Settings) -> Result<State, gst::ErrorMessage> {
        if settings.window == 0 {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("window must be at least 1 second")
            ));
        }
        // Action compliance is structure only: no setting may make pixels leave beside it.
        if settings.compliance_file.is_some()
            && settings.image_retention != super::ImageRetention::None
        {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("compliance-file is structure-only: image-retention must stay none (run inspection in an aggregator of its own)")
            ));
        }
        if settings.demographics && settings.window < MIN_DEMOGRAPHICS_WINDOW {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "demographics need windows of at least {} s (window is {} s): shorter windows could single people out",
                    MIN_DEMOGRAPHICS_WINDOW,
                    settings.window
                )
            ));
        }
        let zones =
            read_file(&settings.zones_file, "zones-file", ZoneConfig::parse)?.unwrap_or_default();
        let compliance = read_file(
            &settings.compliance_file,
            "compliance-file",
            ComplianceFile::parse,
        )?
        .map(|file| {
            let checker = file.checker();
            (file, checker)
        });
        let inspector = read_file(
            &settings.inspection_file,
            "inspection-file",
            InspectionFile::parse,
        )?
        .map(Inspector::new);
        let fixed_start_ns = match &settings.start_time {
            None => None,
            Some(text) => Some(parse_start_time(text).ok_or_else(|| {
                gst::error_msg!(gst::LibraryError::Settings, ("Invalid start-time '{}': expected RFC 3339 (2026-11-23T10:00:00Z) or seconds since the epoch", text))
            })?),
        };
        let tracker = Tracker::new(TrackerConfig {
            high_score: settings.high_score,
            low_score: settings.low_score,
            max_misses: settings.max_misses,
            min_hits: settings.min_hits.max(1),
            ..Default::default()
        });
        let metrics = Metrics::new(AggregatorConfig {
            window_ns: settings.window as u64 * 1_000_000_000,
            zones: zones.clone(),
            demographics: settings.demographics,
            k: settings.k,
            inspection: inspector.is_some(),
        });
        Ok(State {
            settings,
            tracker,
            metrics,
            zones,
            info: None,
            anchor: None,
            fixed_start_ns,
            windows_sent: 0,
            last_pts: None,
            compliance,
            inspector,
            last_capture_ns: 0,
        })
    }

    /// The frame as a JPEG (converted to RGB first unless it is RGB): bytes, width, height.
    fn frame_jpeg(
        &self,
        state: &State,
        buf: &gst::BufferRef,
    ) -> Result<(Vec<u8>, u32, u32), String> {
        let info = state.info.as_ref().ok_or("no caps")?;
        let (w, h) = (info.width(), info.height());
        let rgb_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
            .build()
            .map_err(|e| e.to_string())?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, info)
            .map_err(|_| "cannot map the frame".to_string())?;
        let mut rgb_buf = gst::Buffer::with_size(rgb_info.size()).map_err(|e| e.to_string())?;
        {
            let rgb_mut = rgb_buf.get_mut().ok_or("buffer not writable")?;
            let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(rgb_mut, &rgb_info)
                .map_err(|_| "cannot map the RGB frame".to_string())?;
            let mut in_info = info.clone();
            // The converter refuses framerate and interlacing changes: match the output's.
            if in_info.fps() != rgb_info.fps()
                || in_info.interlace_mode() != rgb_info.interlace_mode()
            {
                in_info = gst_video::VideoInfo::builder(info.format(), w, h)
                    .colorimetry(&info.colorimetry())
                    .build()
                    .map_err(|e| e.to_string())?;
            }
            let converter = gst_video::VideoConverter::new(&in_info, &rgb_info, None)
                .map_err(|e| e.to_string())?;
            converter.frame_ref(&frame, &mut out);
        }
        let map = rgb_buf.map_readable().map_err(|e| e.to_string())?;
        let stride = rgb_info.stride()[0] as usize;
        let mut packed = Vec::with_capacity((w * h * 3) as usize);
        for row in 0..h as usize {
            packed.extend_from_slice(&map[row * stride..row * stride + w as usize * 3]);
        }
        let quality = state.settings.jpeg_quality.clamp(1, 100) as u8;
        let jpeg = crate::images::encode_jpeg(&packed, w, h, quality)?;
        Ok((jpeg, w, h))
    }

    /// Posts an event on the bus and sends it downstream (for auditsink), with the PTS of
    /// the frame that produced it.
    fn emit(&self, state: &State, event: &Event) {
        let mut s = events::to_structure(event);
        if let Some(pts) = state.last_pts {
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
            gst::debug!(CAT, imp = self, "downstream did not take an event");
        }
    }

    /// Step events and compliance cycles: labels, times and flags only.
    fn send_compliance(&self, state: &State, out: ComplianceOutput) {
        for step in out.steps {
            self.emit(state, &Event::Step(step.event()));
        }
        for cycle in out.cycles {
            gst::info!(
                CAT,
                imp = self,
                "cycle {}: {}",
                cycle.number,
                cycle.status().as_str()
            );
            self.emit(state, &Event::Compliance(cycle.record()));
        }
    }

    fn send_windows(&self, state: &mut State, windows: Vec<MetricsWindow>) {
        for w in windows {
            gst::debug!(
                CAT,
                imp = self,
                "window {} .. {}: {} OTS",
                w.window_start,
                w.window_end,
                w.opportunities_to_see
            );
            // With the PTS of the frame that closed the window (the last frame at EOS).
            self.emit(state, &Event::Window(w));
            state.windows_sent += 1;
        }
    }

    /// Collects person candidates (persons, plus faces no person contains) from the ROI metas.
    fn candidates(state: &State, buf: &gst::BufferRef, w: u32, h: u32) -> Vec<Candidate> {
        let (fw, fh) = (w as f64, h as f64);
        let mut persons: Vec<Candidate> = Vec::new();
        let mut faces: Vec<Candidate> = Vec::new();
        for (index, roi) in buf.iter_meta::<VideoRegionOfInterestMeta>().enumerate() {
            let d = veil_meta::Detection::from_roi(&roi, w, h);
            let b = [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max];
            if d.label == state.settings.person_label {
                persons.push(Candidate {
                    rois: vec![index],
                    bbox: b,
                    score: d.confidence,
                    frontal: None,
                    attributes: attributes(&roi),
                });
            } else if d.label == state.settings.face_label {
                let frontal = d.landmarks.as_ref().map(|lm| {
                    let px: Vec<(f64, f64)> =
                        lm.points.iter().map(|&(x, y)| (x * fw, y * fh)).collect();
                    attention::is_frontal(&px)
                });
                faces.push(Candidate {
                    rois: vec![index],
                    bbox: b,
                    score: d.confidence,
                    frontal,
                    attributes: attributes(&roi),
                });
            }
        }
        for face in faces {
            let fb = face.bbox;
            let (cx, cy) = ((fb[0] + fb[2]) / 2.0, (fb[1] + fb[3]) / 2.0);
            // The smallest person box containing the face's centre owns it.
            let owner = persons
                .iter_mut()
                .filter(|p| {
                    cx >= p.bbox[0] && cx <= p.bbox[2] && cy >= p.bbox[1] && cy <= p.bbox[3]
                })
                .min_by(|a, b| {
                    let area = |c: &Candidate| (c.bbox[2] - c.bbox[0]) * (c.bbox[3] - c.bbox[1]);
                    area(a).total_cmp(&area(b))
                });
            match owner {
                Some(p) => {
                    p.rois.extend(face.rois);
                    p.attributes.extend(face.attributes);
                    p.frontal = match (p.frontal, face.frontal) {
                        (Some(a), Some(b)) => Some(a || b),
                        (a, b) => a.or(b),
                    };
                }
                // A face nobody's box contains is a person of its own.
                None => persons.push(face),
            }
        }
        persons
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
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("window")
                    .nick("Window")
                    .blurb("Window length in seconds; windows are aligned to UTC")
                    .minimum(1)
                    .default_value(DEFAULT_WINDOW)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("start-time")
                    .nick("Start time")
                    .blurb("Capture time of the first frame (RFC 3339 or seconds since the epoch), for files; default: the wall clock when the first frame arrives")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("zones-file")
                    .nick("Zones file")
                    .blurb("TOML file with [[zone]] polygons and [[line]] directed lines in normalized coordinates")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("inspection-file")
                    .nick("Inspection file")
                    .blurb("Visual inspection: TOML with the part trigger (every frame, or an object entering a zone) and the rules that make a part NG (a region label with a minimum confidence); emits veil-inspection records (OK/NG with the reason) and yield counts per window. Unset: off")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("image-retention", super::ImageRetention::None)
                    .nick("Image retention")
                    .blurb("Which inspected frames may leave as image records: none (default), failures (NG parts only; OK frames are never encoded), all (explicit opt-in)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("jpeg-quality")
                    .nick("JPEG quality")
                    .blurb("Quality of retained inspection images")
                    .minimum(1)
                    .maximum(100)
                    .default_value(85)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("compliance-file")
                    .nick("Compliance file")
                    .blurb("Action compliance: TOML with the expected step sequence, timeouts and where steps happen (step zones of an object label, or region labels); emits veil-step events and veil-compliance records per cycle. Unset: off")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("person-label")
                    .nick("Person label")
                    .blurb("ROI label of people")
                    .default_value(Some(DEFAULT_PERSON_LABEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("face-label")
                    .nick("Face label")
                    .blurb("ROI label of faces (attributed to the person containing them; attention from their landmarks)")
                    .default_value(Some(DEFAULT_FACE_LABEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("demographics")
                    .nick("Demographics")
                    .blurb("Report classifier attributes per zone (needs window >= 300 s; cells below k suppressed)")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("k")
                    .nick("k")
                    .blurb("Smallest demographic cell reported")
                    .minimum(2)
                    .default_value(DEFAULT_K)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-misses")
                    .nick("Max misses")
                    .blurb("Frames a track survives without a detection")
                    .default_value(DEFAULT_MAX_MISSES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-hits")
                    .nick("Min hits")
                    .blurb("Detections before a track is confirmed and counted")
                    .minimum(1)
                    .default_value(DEFAULT_MIN_HITS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("high-score")
                    .nick("High score")
                    .blurb("Detections at or above this start tracks and are associated first")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_HIGH_SCORE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("low-score")
                    .nick("Low score")
                    .blurb("Detections between this and high-score only continue tracks (ByteTrack)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_LOW_SCORE)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let opt = |v: &glib::Value| {
            v.get::<Option<String>>()
                .expect("type checked upstream")
                .filter(|s| !s.is_empty())
        };
        match pspec.name() {
            "window" => s.window = value.get().expect("type checked upstream"),
            "start-time" => s.start_time = opt(value),
            "zones-file" => s.zones_file = opt(value).map(PathBuf::from),
            "compliance-file" => s.compliance_file = opt(value).map(PathBuf::from),
            "inspection-file" => s.inspection_file = opt(value).map(PathBuf::from),
            "image-retention" => s.image_retention = value.get().expect("type checked upstream"),
            "jpeg-quality" => s.jpeg_quality = value.get().expect("type checked upstream"),
            "person-label" => s.person_label = opt(value).unwrap_or_default(),
            "face-label" => s.face_label = opt(value).unwrap_or_default(),
            "demographics" => s.demographics = value.get().expect("type checked upstream"),
            "k" => s.k = value.get().expect("type checked upstream"),
            "max-misses" => s.max_misses = value.get().expect("type checked upstream"),
            "min-hits" => s.min_hits = value.get().expect("type checked upstream"),
            "high-score" => s.high_score = value.get().expect("type checked upstream"),
            "low-score" => s.low_score = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "window" => s.window.to_value(),
            "start-time" => s.start_time.to_value(),
            "zones-file" => s
                .zones_file
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "person-label" => s.person_label.to_value(),
            "image-retention" => s.image_retention.to_value(),
            "jpeg-quality" => s.jpeg_quality.to_value(),
            "inspection-file" => s
                .inspection_file
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "compliance-file" => s
                .compliance_file
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "face-label" => s.face_label.to_value(),
            "demographics" => s.demographics.to_value(),
            "k" => s.k.to_value(),
            "max-misses" => s.max_misses.to_value(),
            "min-hits" => s.min_hits.to_value(),
            "high-score" => s.high_score.to_value(),
            "low-score" => s.low_score.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for Aggregator {}

impl ElementImpl for Aggregator {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Veil audience aggregator",
                "Filter/Analyzer/Video",
                "Tracks people (ephemeral ids, motion only) and emits anonymous audience metrics per UTC-aligned window \
                 as custom downstream events and element messages",
                "Veil developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/x-raw").build();
            veil_meta::element::in_place_pad_templates(&caps)
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
        *self.state.lock().unwrap() = Some(self.prepare(settings)?);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid caps {}", incaps))?;
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.info = Some(info);
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            let mut guard = self.state.lock().unwrap();
            if let Some(state) = guard.as_mut() {
                let windows = state.metrics.finish();
                self.send_windows(state, windows);
                let end = state.last_capture_ns;
                if let Some(out) = state.compliance.as_mut().map(|(_, c)| c.finish(end)) {
                    self.send_compliance(state, out);
                }
            }
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state.lock().unwrap();
        let Some(state) = guard.as_mut() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Not started"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let Some((w, h)) = state.info.as_ref().map(|i| (i.width(), i.height())) else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let pts = buf.pts().map(|p| p.nseconds()).unwrap_or(0);
        state.last_pts = Some(pts);
        let (anchor_ns, first_pts) = *state
            .anchor
            .get_or_insert((state.fixed_start_ns.unwrap_or_else(now_ns), pts));
        let capture_ns = anchor_ns + pts.saturating_sub(first_pts);
        state.last_capture_ns = capture_ns;
        // The regions of the frame, for the compliance and inspection modes.
        let detections: Vec<veil_meta::Detection> =
            if state.compliance.is_some() || state.inspector.is_some() {
                buf.iter_meta::<VideoRegionOfInterestMeta>()
                    .map(|roi| veil_meta::Detection::from_roi(&roi, w, h))
                    .collect()
            } else {
                Vec::new()
            };
        // A second-stage classifier's class on a region (a param with `label` and `confidence`,
        // e.g. inferfilter roi-label=part) counts as a region of that label at the same place.
        let classes: Vec<(String, [f64; 4], f64)> = if detections.is_empty() {
            Vec::new()
        } else {
            buf.iter_meta::<VideoRegionOfInterestMeta>()
                .zip(&detections)
                .flat_map(|(roi, d)| {
                    let b = [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max];
                    roi.params()
                        .filter(|p| !NON_ATTRIBUTE_PARAMS.contains(&p.name().as_str()))
                        .filter_map(|p| {
                            Some((
                                p.get::<String>("label").ok()?,
                                b,
                                p.get::<f64>("confidence").ok()?,
                            ))
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let regions: Vec<(&str, [f64; 4], f64)> = detections
            .iter()
            .map(|d| {
                let b = &d.bbox;
                (
                    d.label.as_str(),
                    [b.x_min, b.y_min, b.x_max, b.y_max],
                    d.confidence,
                )
            })
            .chain(classes.iter().map(|(l, b, c)| (l.as_str(), *b, *c)))
            .collect();
        if let Some((file, checker)) = state.compliance.as_mut() {
            let step = file.step_of_frame(&regions).map(str::to_owned);
            let out = checker.observe(step.as_deref(), capture_ns);
            self.send_compliance(state, out);
        }
        let decision = state.inspector.as_mut().and_then(|i| i.frame(&regions));

        let mut candidates = Self::candidates(state, buf, w, h);
        candidates.retain(|c| !state.zones.excluded(&c.bbox));
        let boxes: Vec<BBox> = candidates.iter().map(|c| c.bbox).collect();
        let scores: Vec<f64> = candidates.iter().map(|c| c.score).collect();
        let (ids, ended) = state.tracker.update(&boxes, &scores);
        state.metrics.end_tracks(&ended);
        let observations: Vec<Observation> = candidates
            .iter()
            .zip(&ids)
            .filter_map(|(c, id)| {
                id.map(|track| Observation {
                    track,
                    bbox: c.bbox,
                    frontal: c.frontal,
                    attributes: c.attributes.clone(),
                })
            })
            .collect();
        // Ephemeral ids into the ROIs (DL Streamer's object_id param), for downstream elements.
        let mut id_of_roi: Vec<Option<u64>> = Vec::new();
        for (c, id) in candidates.iter().zip(&ids) {
            for &r in &c.rois {
                if id_of_roi.len() <= r {
                    id_of_roi.resize(r + 1, None);
                }
                id_of_roi[r] = *id;
            }
        }
        for (index, mut roi) in buf.iter_meta_mut::<VideoRegionOfInterestMeta>().enumerate() {
            if let Some(id) = id_of_roi.get(index).copied().flatten() {
                roi.add_param(
                    gst::Structure::builder("object_id")
                        .field("id", id as i32)
                        .build(),
                );
            }
        }
        let windows = state.metrics.frame(capture_ns, &observations);
        self.send_windows(state, windows);
        if let Some(d) = decision {
            // Counted in the window of this frame (the windows before it are closed above).
            state.metrics.part(d.ok());
            gst::debug!(CAT, imp = self, "part {}: {}", d.part, d.verdict().as_str());
            let time = veil_wire::time::format_time(capture_ns);
            // The frame leaves only as the retention setting says; an OK frame under
            // `failures` is never even encoded.
            let keep = match state.settings.image_retention {
                super::ImageRetention::None => false,
                super::ImageRetention::Failures => !d.ok(),
                super::ImageRetention::All => true,
            };
            let image = if keep {
                match self.frame_jpeg(state, buf) {
                    Ok((jpeg, iw, ih)) => Some(crate::images::image_record(
                        d.part,
                        d.verdict(),
                        &time,
                        &jpeg,
                        iw,
                        ih,
                    )),
                    Err(e) => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Encode,
                            ("Cannot encode the image of part {}: {}", d.part, e)
                        );
                        return Err(gst::FlowError::Error);
                    }
                }
            } else {
                None
            };
            let record = InspectionRecord {
                version: 1,
                part: d.part,
                decision: d.verdict(),
                reason: d.reason.clone(),
                time,
                image: image.as_ref().map(|i| i.reference()),
            };
            self.emit(state, &Event::Inspection(record));
            if let Some(image) = image {
                self.emit(state, &Event::Image(image));
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
