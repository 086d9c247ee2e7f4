// SPDX-License-Identifier: MIT OR Apache-2.0
//! Visual inspection: a part per frame or per object entering a zone, OK or NG by the first
//! matching rule ([`crate::inspection`]), an `inspection` record per part, the part's frame as an
//! `image` record only as the [`ImagePolicy`] says, and windows carrying the yield counts.

use veil_meta::time::Break;
use veil_wire::event::{Event, InspectionRecord};
use veil_wire::time::format_time;

use super::{Analysis, Frame, FramePixels, Output};
use crate::images::image_record;
use crate::inspection::{InspectionFile, Inspector};
use crate::metrics::{AggregatorConfig, Metrics};
use crate::zones::ZoneConfig;

/// Which inspected frames may leave the device, as JPEG at a quality (1–100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePolicy {
    /// No image ever leaves (the default).
    None,
    /// The frame of each NG part; OK frames are never even encoded.
    Failures { quality: u8 },
    /// Every inspected part's frame (explicit opt-in).
    All { quality: u8 },
}

impl ImagePolicy {
    /// The JPEG quality, if a part with this outcome is kept.
    fn keeps(self, ok: bool) -> Option<u8> {
        match self {
            ImagePolicy::None => None,
            ImagePolicy::Failures { quality } => (!ok).then_some(quality),
            ImagePolicy::All { quality } => Some(quality),
        }
    }
}

/// What an inspection analysis needs.
#[derive(Debug, Clone)]
pub struct InspectionPlan {
    pub file: InspectionFile,
    pub images: ImagePolicy,
    /// Window length for the yield counts (ns).
    pub window_ns: u64,
}

pub struct Inspection {
    inspector: Inspector,
    images: ImagePolicy,
    /// Windows of yield counts only: no people are tracked in this mode.
    windows: Metrics,
}

impl Inspection {
    pub fn new(plan: InspectionPlan) -> Inspection {
        Inspection {
            inspector: Inspector::new(plan.file),
            images: plan.images,
            windows: Metrics::new(AggregatorConfig {
                window_ns: plan.window_ns,
                zones: ZoneConfig::default(),
                demographics: false,
                k: 0,
                inspection: true,
            }),
        }
    }
}

impl Analysis for Inspection {
    fn frame(&mut self, frame: &Frame, pixels: &dyn FramePixels) -> Result<Output, String> {
        let decision = self.inspector.frame(&frame.regions());
        // Windows closed before this frame go first; the part counts in this frame's window.
        let mut events: Vec<Event> = self
            .windows
            .frame(frame.capture_ns, &[])
            .into_iter()
            .map(Event::Window)
            .collect();
        if let Some(d) = decision {
            self.windows.part(d.ok());
            let time = format_time(frame.capture_ns);
            let image = match self.images.keeps(d.ok()) {
                Some(quality) => {
                    let (jpeg, w, h) = pixels
                        .jpeg(quality)
                        .map_err(|e| format!("cannot encode the image of part {}: {e}", d.part))?;
                    Some(image_record(d.part, d.verdict(), &time, &jpeg, w, h))
                }
                None => None,
            };
            events.push(Event::Inspection(InspectionRecord {
                version: 1,
                part: d.part,
                decision: d.verdict(),
                reason: d.reason.clone(),
                time,
                image: image.as_ref().map(|i| i.reference()),
            }));
            events.extend(image.map(Event::Image));
        }
        Ok(Output {
            events,
            object_ids: Vec::new(),
        })
    }

    fn discontinuity(&mut self, brk: &Break) -> Vec<Event> {
        self.inspector.discontinuity();
        self.windows.discontinuity(brk);
        Vec::new()
    }

    fn finish(&mut self, _end_ns: u64) -> Vec<Event> {
        self.windows
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

    const RULES: &str = "trigger = \"frame\"\n[[rule]]\nname = \"dark spot\"\nlabel = \"ng\"\nmin_confidence = 0.5\n";

    struct Pixels;
    impl FramePixels for Pixels {
        fn jpeg(&self, q: u8) -> Result<(Vec<u8>, u32, u32), String> {
            Ok((vec![0xff, 0xd8, q], 2, 2))
        }
    }

    fn run(images: ImagePolicy, pixels: &dyn FramePixels) -> Vec<Event> {
        let mut a = Inspection::new(InspectionPlan {
            file: InspectionFile::parse(RULES).unwrap(),
            images,
            window_ns: 60_000_000_000,
        });
        let mut events = Vec::new();
        for (i, label) in ["ok", "ng", "ok"].iter().enumerate() {
            let objects = [object(0, label, [0.0, 0.0, 1.0, 1.0], 0.9)];
            let frame = Frame {
                capture_ns: 1_795_428_000_000_000_000 + i as u64 * 1_000_000_000,
                objects: &objects,
            };
            events.extend(a.frame(&frame, pixels).unwrap().events);
        }
        events.extend(a.finish(0));
        events
    }

    #[test]
    fn parts_are_decided_and_only_failures_keep_their_frame() {
        let events = run(ImagePolicy::Failures { quality: 80 }, &Pixels);
        let decisions: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Inspection(i) => Some(i.decision.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(decisions, ["OK", "NG", "OK"]);
        let images: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Image(i) => Some(i.part),
                _ => None,
            })
            .collect();
        assert_eq!(images, [2]);
        let Some(Event::Window(w)) = events.last() else {
            panic!("{events:?}")
        };
        let counts = w.inspection.as_ref().unwrap();
        assert_eq!((counts.parts, counts.ok, counts.ng), (3, 2, 1));
        assert_eq!(w.opportunities_to_see, 0, "no people tracked in this mode");
    }

    #[test]
    fn without_retention_no_frame_is_ever_encoded() {
        // NoPixels panics if asked for a frame.
        let events = run(ImagePolicy::None, &NoPixels);
        assert!(!events.iter().any(|e| matches!(e, Event::Image(_))));
    }
}
