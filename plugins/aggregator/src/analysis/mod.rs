// SPDX-License-Identifier: MIT OR Apache-2.0
//! The aggregator's three analyses behind one small trait: frame objects and capture time in,
//! typed events out, a flush at the end of the stream. The element chooses one at start from
//! its settings ([`Plan`]); it only reads metas, keeps time, and pushes what the analysis
//! returns.
//!
//! - [`audience`]: people tracked across frames → anonymous metrics per UTC-aligned window.
//! - [`inspection`]: a part per frame or per object entering a zone → OK/NG decisions, the kept
//!   images (only under an image retention), yield counts per window.
//! - [`compliance`]: an operator's steps → step events and one record per cycle; structure
//!   only (a [`CompliancePlan`] has no place for images).

pub mod audience;
pub mod compliance;
pub mod inspection;

use veil_meta::time::Break;
use veil_wire::event::Event;

use crate::tracker::BBox;

pub use audience::AudiencePlan;
pub use compliance::CompliancePlan;
pub use inspection::{ImagePolicy, InspectionPlan};

/// A region of the frame as the analyses read it (from one ROI meta).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its position among the buffer's ROI metas (ROI ids are not unique, often all 0).
    pub roi: usize,
    pub label: String,
    /// Normalized `[x_min, y_min, x_max, y_max]`.
    pub bbox: BBox,
    pub confidence: f64,
    /// Face landmarks in pixels, when the detector gives them.
    pub landmarks_px: Option<Vec<(f64, f64)>>,
    /// Classifier results on the region (DL Streamer's convention): the param's name (the
    /// attribute, e.g. `gender` or `classification`), its `label`, its `confidence` if given.
    pub classes: Vec<(String, String, Option<f64>)>,
}

/// One frame: its capture time (UTC ns since the epoch) and its objects.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub capture_ns: u64,
    pub objects: &'a [Object],
}

impl Frame<'_> {
    /// Every region with its label, box and confidence; a classifier's class on a region
    /// counts as a region of that label at the same place (e.g. `inferfilter roi-label=part`).
    pub fn regions(&self) -> Vec<(&str, BBox, f64)> {
        self.objects
            .iter()
            .map(|o| (o.label.as_str(), o.bbox, o.confidence))
            .chain(self.objects.iter().flat_map(|o| {
                o.classes
                    .iter()
                    .filter_map(move |(_, label, c)| Some((label.as_str(), o.bbox, (*c)?)))
            }))
            .collect()
    }
}

/// The frame's pixels, for the analyses that may keep them (inspection images only). Encoded
/// on demand: a frame no setting keeps is never encoded.
pub trait FramePixels {
    /// The frame as a JPEG at `quality` (1–100): bytes, width, height.
    fn jpeg(&self, quality: u8) -> Result<(Vec<u8>, u32, u32), String>;
}

/// What an analysis made of a frame.
#[derive(Debug, Default)]
pub struct Output {
    pub events: Vec<Event>,
    /// Ephemeral track ids for ROIs (position among the ROI metas → id), written back as
    /// DL Streamer `object_id` params.
    pub object_ids: Vec<(usize, u64)>,
}

/// One of the three analyses.
pub trait Analysis: Send {
    /// The analysis of one frame.
    fn frame(&mut self, frame: &Frame, pixels: &dyn FramePixels) -> Result<Output, String>;
    /// A break in the stream's time, before the first frame after it: nothing open may span
    /// it (tracks, steps, cycles end at the last frame before it).
    fn discontinuity(&mut self, brk: &Break) -> Vec<Event>;
    /// The end of the stream at capture time `end_ns`: what is still open, flushed.
    fn finish(&mut self, end_ns: u64) -> Vec<Event>;
}

/// Which analysis an aggregator runs, and everything it needs. Built once at start from the
/// element's settings — the one place that refuses combinations that make no sense.
#[derive(Debug, Clone)]
pub enum Plan {
    Audience(AudiencePlan),
    Inspection(InspectionPlan),
    Compliance(CompliancePlan),
}

impl Plan {
    pub fn start(self) -> Box<dyn Analysis> {
        match self {
            Plan::Audience(p) => Box::new(audience::Audience::new(p)),
            Plan::Inspection(p) => Box::new(inspection::Inspection::new(p)),
            Plan::Compliance(p) => Box::new(compliance::Compliance::new(p)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Plan::Audience(_) => "audience",
            Plan::Inspection(_) => "inspection",
            Plan::Compliance(_) => "compliance",
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Pixels that are never asked for.
    pub struct NoPixels;
    impl FramePixels for NoPixels {
        fn jpeg(&self, _: u8) -> Result<(Vec<u8>, u32, u32), String> {
            panic!("the analysis encoded a frame it must not keep")
        }
    }

    pub fn object(roi: usize, label: &str, bbox: BBox, confidence: f64) -> Object {
        Object {
            roi,
            label: label.into(),
            bbox,
            confidence,
            landmarks_px: None,
            classes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::object;
    use super::*;

    #[test]
    fn classes_count_as_regions_at_their_object() {
        let mut part = object(0, "part", [0.1, 0.1, 0.2, 0.2], 0.9);
        part.classes
            .push(("classification".into(), "ng".into(), Some(0.8)));
        part.classes.push(("colour".into(), "red".into(), None));
        let objects = [part];
        let frame = Frame {
            capture_ns: 0,
            objects: &objects,
        };
        let regions = frame.regions();
        assert_eq!(
            regions,
            vec![
                ("part", [0.1, 0.1, 0.2, 0.2], 0.9),
                ("ng", [0.1, 0.1, 0.2, 0.2], 0.8)
            ]
        );
    }
}
