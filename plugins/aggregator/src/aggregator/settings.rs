// SPDX-License-Identifier: MIT OR Apache-2.0
//! The aggregator's properties, and the one place that turns them into the analysis to run
//! ([`Settings::plan`]): the combinations that make no sense are refused here, once, and the
//! plans' types cannot express them afterwards.

use std::path::PathBuf;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use veil_meta::element::{path_to_value, path_value, read_config_file, string_value};

use super::ImageRetention;
use crate::analysis::audience::MIN_DEMOGRAPHICS_WINDOW_S;
use crate::analysis::{AudiencePlan, CompliancePlan, ImagePolicy, InspectionPlan, Plan};
use crate::compliance::ComplianceFile;
use crate::inspection::InspectionFile;
use crate::tracker::TrackerConfig;
use crate::zones::ZoneConfig;

const DEFAULT_WINDOW: u32 = 60;
const DEFAULT_PERSON_LABEL: &str = "person";
const DEFAULT_FACE_LABEL: &str = "face";
const DEFAULT_K: u32 = 5;
const DEFAULT_MAX_MISSES: u32 = 30;
const DEFAULT_MIN_HITS: u32 = 3;
const DEFAULT_HIGH_SCORE: f64 = 0.5;
const DEFAULT_LOW_SCORE: f64 = 0.1;
const DEFAULT_JPEG_QUALITY: u32 = 85;
/// Seconds: longer than any frame interval a working camera has (even at 1 fps), shorter than
/// the time a person takes to walk through a scene.
pub const DEFAULT_MAX_GAP_S: f64 = 2.0;

#[derive(Debug, Clone)]
pub struct Settings {
    pub window: u32,
    pub start_time: Option<String>,
    pub zones_file: Option<PathBuf>,
    pub person_label: String,
    pub face_label: String,
    pub demographics: bool,
    pub k: u32,
    pub max_misses: u32,
    pub min_hits: u32,
    pub high_score: f64,
    pub low_score: f64,
    pub compliance_file: Option<PathBuf>,
    pub inspection_file: Option<PathBuf>,
    pub image_retention: ImageRetention,
    pub jpeg_quality: u32,
    pub max_gap_s: f64,
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
            image_retention: ImageRetention::None,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            max_gap_s: DEFAULT_MAX_GAP_S,
        }
    }
}

fn refused(reason: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::LibraryError::Settings, ("{}", reason))
}

impl Settings {
    /// The analysis these settings ask for, with its configuration files read. Refused, with a
    /// message naming the settings: both an inspection and a compliance file (one analysis per
    /// aggregator); any image retention beside a compliance file (structure only) or without an
    /// inspection file; demographics on windows shorter than 300 s.
    pub fn plan(&self) -> Result<Plan, gst::ErrorMessage> {
        let window_ns = self.window.max(1) as u64 * 1_000_000_000;
        match (&self.inspection_file, &self.compliance_file) {
            (Some(_), Some(_)) => Err(refused(
                "inspection-file and compliance-file are two analyses: run each in an aggregator of its own".into(),
            )),
            (None, Some(path)) => {
                if self.image_retention != ImageRetention::None {
                    return Err(refused(
                        "compliance-file is structure-only: image-retention must stay none (run inspection in an aggregator of its own)".into(),
                    ));
                }
                let file = read_config_file("compliance-file", path, ComplianceFile::parse)?;
                Ok(Plan::Compliance(CompliancePlan { file }))
            }
            (Some(path), None) => {
                let file = read_config_file("inspection-file", path, InspectionFile::parse)?;
                let quality = self.jpeg_quality.clamp(1, 100) as u8;
                let images = match self.image_retention {
                    ImageRetention::None => ImagePolicy::None,
                    ImageRetention::Failures => ImagePolicy::Failures { quality },
                    ImageRetention::All => ImagePolicy::All { quality },
                };
                Ok(Plan::Inspection(InspectionPlan {
                    file,
                    images,
                    window_ns,
                }))
            }
            (None, None) => {
                if self.image_retention != ImageRetention::None {
                    return Err(refused(
                        "image-retention keeps inspected parts' frames: it needs an inspection-file".into(),
                    ));
                }
                if self.demographics && (self.window as u64) < MIN_DEMOGRAPHICS_WINDOW_S {
                    return Err(refused(format!(
                        "demographics need windows of at least {MIN_DEMOGRAPHICS_WINDOW_S} s (window is {} s): shorter windows could single people out",
                        self.window
                    )));
                }
                let zones = match &self.zones_file {
                    Some(path) => read_config_file("zones-file", path, ZoneConfig::parse)?,
                    None => ZoneConfig::default(),
                };
                Ok(Plan::Audience(AudiencePlan {
                    window_ns,
                    zones,
                    person_label: self.person_label.clone(),
                    face_label: self.face_label.clone(),
                    tracker: TrackerConfig {
                        high_score: self.high_score,
                        low_score: self.low_score,
                        max_misses: self.max_misses,
                        min_hits: self.min_hits.max(1),
                        ..Default::default()
                    },
                    demographics: self.demographics.then_some(self.k),
                }))
            }
        }
    }

    pub fn set(&mut self, name: &str, value: &glib::Value) {
        let get_u32 = || value.get::<u32>().unwrap_or_default();
        let get_f64 = || value.get::<f64>().unwrap_or_default();
        match name {
            "window" => self.window = get_u32(),
            "start-time" => self.start_time = string_value(value),
            "zones-file" => self.zones_file = path_value(value),
            "compliance-file" => self.compliance_file = path_value(value),
            "inspection-file" => self.inspection_file = path_value(value),
            "image-retention" => self.image_retention = value.get().unwrap_or_default(),
            "jpeg-quality" => self.jpeg_quality = get_u32(),
            "person-label" => self.person_label = string_value(value).unwrap_or_default(),
            "face-label" => self.face_label = string_value(value).unwrap_or_default(),
            "demographics" => self.demographics = value.get().unwrap_or_default(),
            "k" => self.k = get_u32(),
            "max-misses" => self.max_misses = get_u32(),
            "min-hits" => self.min_hits = get_u32(),
            "high-score" => self.high_score = get_f64(),
            "max-gap" => self.max_gap_s = get_f64(),
            "low-score" => self.low_score = get_f64(),
            // GObject only calls with the names of `properties()`.
            _ => {}
        }
    }

    pub fn get(&self, name: &str) -> glib::Value {
        match name {
            "window" => self.window.to_value(),
            "start-time" => self.start_time.to_value(),
            "zones-file" => path_to_value(&self.zones_file),
            "person-label" => self.person_label.to_value(),
            "image-retention" => self.image_retention.to_value(),
            "jpeg-quality" => self.jpeg_quality.to_value(),
            "inspection-file" => path_to_value(&self.inspection_file),
            "compliance-file" => path_to_value(&self.compliance_file),
            "face-label" => self.face_label.to_value(),
            "demographics" => self.demographics.to_value(),
            "k" => self.k.to_value(),
            "max-misses" => self.max_misses.to_value(),
            "min-hits" => self.min_hits.to_value(),
            "high-score" => self.high_score.to_value(),
            "max-gap" => self.max_gap_s.to_value(),
            "low-score" => self.low_score.to_value(),
            _ => glib::Value::from_type(glib::Type::INVALID),
        }
    }
}

/// The element's properties (what `gst-inspect-1.0 aggregator` shows).
pub fn properties() -> &'static [glib::ParamSpec] {
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
                .blurb("Audience: TOML file with [[zone]] polygons and [[line]] directed lines in normalized coordinates")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("inspection-file")
                .nick("Inspection file")
                .blurb("Visual inspection instead of audience analytics: TOML with the part trigger (every frame, or an object entering a zone) and the rules that make a part NG (a region label with a minimum confidence); emits an inspection record per part (OK/NG with the reason) and yield counts per window. Unset: off")
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("image-retention", ImageRetention::None)
                .nick("Image retention")
                .blurb("With an inspection-file: which inspected frames may leave as image records: none (default), failures (NG parts only; OK frames are never encoded), all (explicit opt-in)")
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("jpeg-quality")
                .nick("JPEG quality")
                .blurb("Quality of retained inspection images")
                .minimum(1)
                .maximum(100)
                .default_value(DEFAULT_JPEG_QUALITY)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("compliance-file")
                .nick("Compliance file")
                .blurb("Action compliance instead of audience analytics: TOML with the expected step sequence, timeouts and where steps happen (step zones of an object label, or region labels); emits a step event per occurrence and a compliance record per cycle, structure only. Unset: off")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("person-label")
                .nick("Person label")
                .blurb("Audience: ROI label of people")
                .default_value(Some(DEFAULT_PERSON_LABEL))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("face-label")
                .nick("Face label")
                .blurb("Audience: ROI label of faces (attributed to the person containing them; attention from their landmarks)")
                .default_value(Some(DEFAULT_FACE_LABEL))
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("demographics")
                .nick("Demographics")
                .blurb("Audience: report classifier attributes per zone (needs window >= 300 s; cells below k suppressed)")
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
                .blurb("Audience: frames a track survives without a detection")
                .default_value(DEFAULT_MAX_MISSES)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("min-hits")
                .nick("Min hits")
                .blurb("Audience: detections before a track is confirmed and counted")
                .minimum(1)
                .default_value(DEFAULT_MIN_HITS)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("max-gap")
                .nick("Maximum gap")
                .blurb("Seconds: a longer step in the stream's time between two frames is a break (an outage, timestamps reset to zero, a jump forward or back): tracks end at it, the windows it overlaps list it, and an integrity record names it")
                .minimum(0.001)
                .maximum(86_400.0)
                .default_value(DEFAULT_MAX_GAP_S)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("high-score")
                .nick("High score")
                .blurb("Audience: detections at or above this start tracks and are associated first (the analytics threshold)")
                .minimum(0.0)
                .maximum(1.0)
                .default_value(DEFAULT_HIGH_SCORE)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("low-score")
                .nick("Low score")
                .blurb("Audience: detections between this and high-score only continue tracks (ByteTrack)")
                .minimum(0.0)
                .maximum(1.0)
                .default_value(DEFAULT_LOW_SCORE)
                .mutable_ready()
                .build(),
        ]
    });
    PROPERTIES.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &Settings) -> String {
        s.plan().unwrap_err().to_string()
    }

    #[test]
    fn one_analysis_per_aggregator_and_nothing_that_makes_no_sense() {
        gst::init().unwrap();
        assert!(matches!(Settings::default().plan(), Ok(Plan::Audience(_))));
        let both = Settings {
            inspection_file: Some("/i.toml".into()),
            compliance_file: Some("/c.toml".into()),
            ..Default::default()
        };
        assert!(err(&both).contains("two analyses"));
        let compliance_images = Settings {
            compliance_file: Some("/c.toml".into()),
            image_retention: ImageRetention::Failures,
            ..Default::default()
        };
        assert!(err(&compliance_images).contains("structure-only"));
        let stray_images = Settings {
            image_retention: ImageRetention::All,
            ..Default::default()
        };
        assert!(err(&stray_images).contains("needs an inspection-file"));
        let short = Settings {
            demographics: true,
            window: 60,
            ..Default::default()
        };
        assert!(err(&short).contains("at least 300 s"));
        let missing = Settings {
            zones_file: Some("/nonexistent/zones.toml".into()),
            ..Default::default()
        };
        assert!(err(&missing).contains("zones-file '/nonexistent/zones.toml'"));
    }
}
