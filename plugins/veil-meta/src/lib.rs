// SPDX-License-Identifier: MIT OR Apache-2.0
//! Metadata conventions shared by every Veil element.
//!
//! Two contracts live here (see docs/design.md, "Contracts between the parts"):
//!
//! * [`status`]: every frame that passed an `inferfilter` carries an inference-status meta saying
//!   which model looked at it and whether inference `ran`, was `skipped` or `failed`. That is what
//!   lets the anonymizer tell "no faces" from "not looked at".
//! * [`roi`]: detections travel as `GstVideoRegionOfInterestMeta` with params in the convention
//!   Intel DL Streamer uses (`detection`, `object_id`, `landmarks`).
//!
//! Both are plain data types with conversion to and from GStreamer metas, so downstream elements
//! and applications read them without knowing about `inferfilter`.

pub mod element;
pub mod events;
pub mod roi;
pub mod status;
pub mod time;

pub use roi::{Detection, Landmarks, NormalizedBox};
pub use status::{InferenceStatus, StatusMeta};

pub use gst::glib;
