// SPDX-License-Identifier: MIT OR Apache-2.0
//! Audience analytics: people tracked across frames by motion only (ephemeral ids, no
//! appearance), attributed faces for attention, excluded zones dropped, then anonymous metrics
//! per UTC-aligned window ([`crate::metrics`]).

use veil_wire::event::Event;

use super::{Analysis, Frame, FramePixels, Object, Output};
use crate::attention;
use crate::metrics::{AggregatorConfig, Metrics, Observation};
use crate::tracker::{BBox, Tracker, TrackerConfig};
use crate::zones::ZoneConfig;

/// What an audience analysis needs.
#[derive(Debug, Clone)]
pub struct AudiencePlan {
    pub window_ns: u64,
    pub zones: ZoneConfig,
    pub person_label: String,
    pub face_label: String,
    pub tracker: TrackerConfig,
    /// Demographic breakdowns with cells below `k` suppressed; only for windows of at least
    /// [`MIN_DEMOGRAPHICS_WINDOW_S`] (the plan cannot be built otherwise).
    pub demographics: Option<u32>,
}

/// Demographic breakdowns need windows at least this long (seconds): shorter ones could single
/// people out.
pub const MIN_DEMOGRAPHICS_WINDOW_S: u64 = 300;

pub struct Audience {
    person_label: String,
    face_label: String,
    zones: ZoneConfig,
    tracker: Tracker,
    metrics: Metrics,
}

/// A person candidate on one frame: the ROIs it came from, its box and score, whether the face
/// attributed to it is frontal, and its classifier attributes.
struct Candidate {
    rois: Vec<usize>,
    bbox: BBox,
    score: f64,
    frontal: Option<bool>,
    attributes: Vec<(String, String)>,
}

impl Candidate {
    fn of(o: &Object, frontal: Option<bool>) -> Candidate {
        Candidate {
            rois: vec![o.roi],
            bbox: o.bbox,
            score: o.confidence,
            frontal,
            attributes: o
                .classes
                .iter()
                .map(|(name, label, _)| (name.clone(), label.clone()))
                .collect(),
        }
    }
}

impl Audience {
    pub fn new(plan: AudiencePlan) -> Audience {
        let metrics = Metrics::new(AggregatorConfig {
            window_ns: plan.window_ns,
            zones: plan.zones.clone(),
            demographics: plan.demographics.is_some(),
            k: plan.demographics.unwrap_or(0),
            inspection: false,
        });
        Audience {
            person_label: plan.person_label,
            face_label: plan.face_label,
            zones: plan.zones,
            tracker: Tracker::new(plan.tracker),
            metrics,
        }
    }

    /// Persons, plus faces no person contains; a face's frontality and attributes go to the
    /// smallest person box containing its centre.
    fn candidates(&self, objects: &[Object]) -> Vec<Candidate> {
        let mut persons: Vec<Candidate> = objects
            .iter()
            .filter(|o| o.label == self.person_label)
            .map(|o| Candidate::of(o, None))
            .collect();
        let faces = objects.iter().filter(|o| o.label == self.face_label);
        for o in faces {
            let face = Candidate::of(o, o.landmarks_px.as_deref().map(attention::is_frontal));
            let fb = face.bbox;
            let (cx, cy) = ((fb[0] + fb[2]) / 2.0, (fb[1] + fb[3]) / 2.0);
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

impl Analysis for Audience {
    fn frame(&mut self, frame: &Frame, _: &dyn FramePixels) -> Result<Output, String> {
        let mut candidates = self.candidates(frame.objects);
        candidates.retain(|c| !self.zones.excluded(&c.bbox));
        let boxes: Vec<BBox> = candidates.iter().map(|c| c.bbox).collect();
        let scores: Vec<f64> = candidates.iter().map(|c| c.score).collect();
        let (ids, ended) = self.tracker.update(&boxes, &scores);
        self.metrics.end_tracks(&ended);
        let mut out = Output::default();
        let mut observations = Vec::new();
        for (c, id) in candidates.into_iter().zip(ids) {
            let Some(track) = id else { continue };
            out.object_ids.extend(c.rois.iter().map(|&r| (r, track)));
            observations.push(Observation {
                track,
                bbox: c.bbox,
                frontal: c.frontal,
                attributes: c.attributes,
            });
        }
        out.events = self
            .metrics
            .frame(frame.capture_ns, &observations)
            .into_iter()
            .map(Event::Window)
            .collect();
        Ok(out)
    }

    fn finish(&mut self, _end_ns: u64) -> Vec<Event> {
        self.metrics
            .finish()
            .into_iter()
            .map(Event::Window)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{NoPixels, object};

    fn plan() -> AudiencePlan {
        AudiencePlan {
            window_ns: 10_000_000_000,
            zones: ZoneConfig::default(),
            person_label: "person".into(),
            face_label: "face".into(),
            tracker: TrackerConfig {
                min_hits: 1,
                ..Default::default()
            },
            demographics: None,
        }
    }

    #[test]
    fn people_are_tracked_counted_and_their_rois_get_ids() {
        let mut a = Audience::new(plan());
        let t0 = 1_795_428_000_000_000_000u64;
        let mut ids = Vec::new();
        for f in 0..20u64 {
            let x = 0.1 + 0.01 * f as f64;
            let objects = [
                object(0, "person", [x, 0.2, x + 0.1, 0.6], 0.9),
                object(1, "face", [x + 0.03, 0.22, x + 0.07, 0.3], 0.8),
                object(2, "car", [0.7, 0.7, 0.9, 0.9], 0.9),
            ];
            let out = a
                .frame(
                    &Frame {
                        capture_ns: t0 + f * 100_000_000,
                        objects: &objects,
                    },
                    &NoPixels,
                )
                .unwrap();
            ids.extend(out.object_ids);
        }
        // The person and its face carry one id; the car none.
        assert!(ids.iter().all(|&(roi, id)| roi < 2 && id == ids[0].1));
        assert!(ids.iter().any(|&(roi, _)| roi == 1));
        let windows = a.finish(t0 + 2_000_000_000);
        let [Event::Window(w)] = windows.as_slice() else {
            panic!("{windows:?}")
        };
        assert_eq!(w.opportunities_to_see, 1);
        assert!(w.inspection.is_none());
    }
}
