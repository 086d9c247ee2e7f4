// SPDX-License-Identifier: MIT OR Apache-2.0
//! Visual inspection: parts, and an OK/NG decision per part from the classifications upstream.
//!
//! A part is one trigger: every frame (`trigger = "frame"`), or an object labelled `part_label`
//! entering the inspection `zone` (its box centre; one part in the zone at a time). The decision
//! is NG when a rule matches — a region on the part's frame labelled `label` (a whole-frame
//! classifier's class, or a detector's defect label) with at least `min_confidence` — the first
//! matching rule (in file order) being the reason; otherwise OK.
//!
//! ```toml
//! trigger = "frame"          # or "zone", with part_label and zone
//! part_label = "part"
//! zone = [[0.3, 0.0], [0.7, 0.0], [0.7, 1.0], [0.3, 1.0]]
//!
//! [[rule]]
//! name = "dark-blob"
//! label = "ng"
//! min_confidence = 0.6
//! ```

use serde::Deserialize;

use crate::zones::in_polygon;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    #[default]
    Frame,
    Zone,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub label: String,
    #[serde(default = "default_confidence")]
    pub min_confidence: f64,
}

fn default_confidence() -> f64 {
    0.5
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionFile {
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default)]
    pub part_label: Option<String>,
    #[serde(default)]
    pub zone: Option<Vec<[f64; 2]>>,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

impl InspectionFile {
    pub fn parse(text: &str) -> Result<InspectionFile, String> {
        let file: InspectionFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.rules.is_empty() {
            return Err("at least one [[rule]] is needed (what makes a part NG)".into());
        }
        if let Some(r) = file
            .rules
            .iter()
            .find(|r| !(0.0..=1.0).contains(&r.min_confidence))
        {
            return Err(format!("rule '{}': min_confidence is 0 to 1", r.name));
        }
        if file.trigger == Trigger::Zone {
            if file.part_label.is_none() {
                return Err("trigger = \"zone\" needs part_label".into());
            }
            if file.zone.as_ref().is_none_or(|z| z.len() < 3) {
                return Err("trigger = \"zone\" needs a zone of at least 3 points".into());
            }
        }
        Ok(file)
    }
}

pub use veil_wire::event::Reason;

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub part: u64,
    pub reason: Option<Reason>,
}

impl Decision {
    pub fn ok(&self) -> bool {
        self.reason.is_none()
    }

    pub fn verdict(&self) -> veil_wire::event::Decision {
        if self.ok() {
            veil_wire::event::Decision::Ok
        } else {
            veil_wire::event::Decision::Ng
        }
    }
}

pub struct Inspector {
    file: InspectionFile,
    parts: u64,
    /// Whether a part was in the zone on the previous frame.
    inside: bool,
}

impl Inspector {
    pub fn new(file: InspectionFile) -> Inspector {
        Inspector {
            file,
            parts: 0,
            inside: false,
        }
    }

    /// One frame's regions (label, normalized box, confidence): a decision if a part is due.
    /// A break in the stream's time: what is in the zone after it is a new part.
    pub fn discontinuity(&mut self) {
        self.inside = false;
    }

    pub fn frame(&mut self, regions: &[(&str, [f64; 4], f64)]) -> Option<Decision> {
        if self.file.trigger == Trigger::Zone {
            let (label, zone) = (self.file.part_label.as_deref()?, self.file.zone.as_ref()?);
            let inside = regions.iter().any(|(l, b, _)| {
                *l == label && in_polygon(zone, ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0))
            });
            let entered = inside && !self.inside;
            self.inside = inside;
            if !entered {
                return None;
            }
        }
        self.parts += 1;
        let reason = self.file.rules.iter().find_map(|rule| {
            regions
                .iter()
                .filter(|(l, _, c)| *l == rule.label && *c >= rule.min_confidence)
                .max_by(|a, b| a.2.total_cmp(&b.2))
                .map(|(l, _, c)| Reason {
                    rule: rule.name.clone(),
                    label: (*l).to_owned(),
                    confidence: *c,
                    min_confidence: rule.min_confidence,
                })
        });
        Some(Decision {
            part: self.parts,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_is_a_part_decided_by_the_first_matching_rule() {
        let file = InspectionFile::parse(
            r#"
[[rule]]
name = "dark-blob"
label = "ng"
min_confidence = 0.6
[[rule]]
name = "scratch"
label = "scratch"
min_confidence = 0.3
"#,
        )
        .unwrap();
        let mut i = Inspector::new(file);
        let whole = [0.0, 0.0, 1.0, 1.0];
        assert!(i.frame(&[("ok", whole, 0.99)]).unwrap().ok());
        let d = i.frame(&[("ng", whole, 0.9)]).unwrap();
        assert_eq!((d.part, d.verdict().as_str()), (2, "NG"));
        assert_eq!(d.reason.unwrap().rule, "dark-blob");
        // Below its rule's confidence: OK.
        assert!(i.frame(&[("ng", whole, 0.55)]).unwrap().ok());
        let d = i.frame(&[("scratch", [0.1, 0.1, 0.2, 0.2], 0.4)]).unwrap();
        assert_eq!(d.reason.unwrap().label, "scratch");
    }

    #[test]
    fn a_part_entering_the_zone_is_one_trigger() {
        let file = InspectionFile::parse(
            r#"
trigger = "zone"
part_label = "part"
zone = [[0.4, 0.0], [0.6, 0.0], [0.6, 1.0], [0.4, 1.0]]
[[rule]]
name = "defect"
label = "defect"
"#,
        )
        .unwrap();
        let mut i = Inspector::new(file);
        let part = |x: f64| ("part", [x, 0.4, x + 0.1, 0.6], 0.9);
        let decisions: Vec<Option<bool>> = [0.1, 0.3, 0.45, 0.46, 0.7, 0.2, 0.45]
            .iter()
            .map(|&x| i.frame(&[part(x)]).map(|d| d.ok()))
            .collect();
        assert_eq!(
            decisions,
            [None, None, Some(true), None, None, None, Some(true)]
        );
        assert!(
            InspectionFile::parse("trigger = \"zone\"\n[[rule]]\nname = \"a\"\nlabel = \"b\"")
                .is_err()
        );
        assert!(InspectionFile::parse("rule = []").is_err());
    }
}
