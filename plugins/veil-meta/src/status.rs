// SPDX-License-Identifier: MIT OR Apache-2.0
//! The inference-status meta: a `GstCustomMeta` named [`STATUS_META_NAME`].
//!
//! Each `inferfilter` instance adds one such meta to every buffer it sees, so two chained
//! instances leave two metas, one per model. Its structure holds:
//!
//! | field     | type   | meaning                                                        |
//! |-----------|--------|----------------------------------------------------------------|
//! | `status`  | string | `ran`, `skipped` (interval) or `failed`                        |
//! | `model`   | string | file name of the model                                         |
//! | `element` | string | name of the element instance that added it                     |
//! | `labels`  | string | comma-separated labels that this instance can attach as ROIs   |
//! | `age`     | uint   | frames since inference last ran (0 when `status` is `ran`)     |

use std::fmt;
use std::str::FromStr;

use gst::glib;

/// Name under which the custom meta is registered; also the name of its structure.
pub const STATUS_META_NAME: &str = "VeilInferenceStatusMeta";

/// Registers the custom meta type. Idempotent; call it from every plugin's `plugin_init`
/// and before reading metas in applications.
pub fn register() {
    // Once: checking then registering from several threads at a time would race.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if !gst::meta::CustomMeta::is_registered(STATUS_META_NAME) {
            // No tags: the meta is copied by in-place transforms, scalers and converters alike,
            // since it describes the frame's content, not its pixel layout.
            gst::meta::CustomMeta::register_simple(STATUS_META_NAME);
        }
    });
}

/// Whether inference looked at a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferenceStatus {
    /// The model ran on this very frame (also when it found nothing).
    Ran,
    /// The frame was skipped by the inference interval.
    Skipped,
    /// Inference was attempted and failed.
    Failed,
}

impl InferenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InferenceStatus::Ran => "ran",
            InferenceStatus::Skipped => "skipped",
            InferenceStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for InferenceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InferenceStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ran" => Ok(InferenceStatus::Ran),
            "skipped" => Ok(InferenceStatus::Skipped),
            "failed" => Ok(InferenceStatus::Failed),
            other => Err(format!("unknown inference status '{other}'")),
        }
    }
}

/// The content of one inference-status meta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMeta {
    pub status: InferenceStatus,
    pub model: String,
    pub element: String,
    pub labels: Vec<String>,
    pub age: u32,
}

impl StatusMeta {
    /// Whether this instance can report objects of `label` at all.
    pub fn covers(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    /// Adds this status as a new meta on `buffer`.
    pub fn attach(&self, buffer: &mut gst::BufferRef) -> Result<(), glib::BoolError> {
        let mut meta = gst::meta::CustomMeta::add(buffer, STATUS_META_NAME)?;
        let s = meta.mut_structure();
        s.set("status", self.status.as_str());
        s.set("model", self.model.as_str());
        s.set("element", self.element.as_str());
        s.set("labels", self.labels.join(",").as_str());
        s.set("age", self.age);
        Ok(())
    }

    /// Reads one status from a meta structure; `None` if a field is missing or malformed.
    pub fn from_structure(s: &gst::StructureRef) -> Option<Self> {
        let labels: String = s.get("labels").ok()?;
        Some(StatusMeta {
            status: s.get::<&str>("status").ok()?.parse().ok()?,
            model: s.get("model").ok()?,
            element: s.get("element").ok()?,
            labels: labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            age: s.get("age").ok()?,
        })
    }

    /// All inference statuses on `buffer`, in the order the elements added them.
    pub fn all(buffer: &gst::BufferRef) -> Vec<StatusMeta> {
        buffer
            .iter_meta::<gst::Meta>()
            .filter_map(|meta| {
                let custom = meta.try_as_custom_meta()?;
                if !custom.has_name(STATUS_META_NAME) {
                    return None;
                }
                StatusMeta::from_structure(custom.structure())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_a_buffer() {
        gst::init().unwrap();
        register();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        let face = StatusMeta {
            status: InferenceStatus::Ran,
            model: "centerface.onnx".into(),
            element: "faces".into(),
            labels: vec!["face".into()],
            age: 0,
        };
        let person = StatusMeta {
            status: InferenceStatus::Skipped,
            model: "nanodet-m.onnx".into(),
            element: "persons".into(),
            labels: vec!["person".into(), "car".into()],
            age: 2,
        };
        face.attach(buffer.get_mut().unwrap()).unwrap();
        person.attach(buffer.get_mut().unwrap()).unwrap();
        let read = StatusMeta::all(&buffer);
        assert_eq!(read, vec![face.clone(), person]);
        assert!(read[0].covers("face"));
        assert!(!read[0].covers("person"));
    }

    #[test]
    fn statuses_parse_and_reject_unknown_words() {
        for s in [
            InferenceStatus::Ran,
            InferenceStatus::Skipped,
            InferenceStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<InferenceStatus>().unwrap(), s);
        }
        assert!("maybe".parse::<InferenceStatus>().is_err());
    }
}
