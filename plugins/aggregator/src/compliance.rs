// SPDX-License-Identifier: MIT OR Apache-2.0
//! Action compliance: steps recognized per frame (the zone a tracked hand or person is in, or a
//! classifier's label) grouped into cycles and checked against an expected sequence.
//!
//! Per frame the caller says which step, if any, is being performed ([`Checker::observe`]).
//! Consecutive frames of one label make one step occurrence (gaps shorter than `merge_ms` are
//! bridged, occurrences shorter than `min_step_ms` are ignored as flicker). A cycle starts at the
//! first step; it closes when every expected step has been seen and the last one ended, when
//! the first expected step starts again after later ones (the next part), when nothing happened
//! for `idle_ms`, or after `timeout_ms`. Each closed cycle is checked: `missing` expected steps,
//! `extra` occurrences (a label not expected, or an expected one repeated), steps `out_of_order`
//! (pairs done in the wrong order), `timed_out`; `status` is `in_order` only when none applies.
//!
//! Structure only: labels and times, nothing about who or what was seen.

use serde::Deserialize;
use veil_wire::event::{ComplianceCycle, CycleStatus, CycleStep, StepEvent};
use veil_wire::time::format_time;

use crate::zones::in_polygon;

/// Where a frame's step comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StepSource {
    /// The step zone that the most confident object of `object_label` is in (its box centre).
    #[default]
    Zone,
    /// The most confident region labelled with a step's name (e.g. a frame classifier's class).
    Label,
}

/// A zone in which an object performs a step (normalized coordinates).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepZone {
    pub step: String,
    pub polygon: Vec<[f64; 2]>,
}

/// The `compliance-file` (TOML):
///
/// ```toml
/// sequence = ["pick", "place", "fasten", "inspect"]
/// timeout_s = 60       # a cycle still open this long is closed as timed out
/// idle_s = 20          # no step for this long closes the cycle
/// merge_ms = 500       # a step's label gone for less than this and back: the same occurrence
/// min_step_ms = 300    # shorter occurrences are flicker
/// step_from = "zone"   # or "label"
/// object_label = "hand"
///
/// [[step_zone]]
/// step = "pick"
/// polygon = [[0.0, 0.0], [0.3, 0.0], [0.3, 0.5], [0.0, 0.5]]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceFile {
    pub sequence: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    #[serde(default = "default_idle")]
    pub idle_s: f64,
    #[serde(default = "default_merge")]
    pub merge_ms: u64,
    #[serde(default = "default_min_step")]
    pub min_step_ms: u64,
    #[serde(default)]
    pub step_from: StepSource,
    #[serde(default = "default_object")]
    pub object_label: String,
    #[serde(default, rename = "step_zone")]
    pub step_zones: Vec<StepZone>,
}

fn default_timeout() -> f64 {
    120.0
}
fn default_idle() -> f64 {
    30.0
}
fn default_merge() -> u64 {
    500
}
fn default_min_step() -> u64 {
    300
}
fn default_object() -> String {
    "hand".into()
}

impl ComplianceFile {
    pub fn parse(text: &str) -> Result<ComplianceFile, String> {
        let file: ComplianceFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.sequence.is_empty() {
            return Err("sequence needs at least one step".into());
        }
        let mut sorted = file.sequence.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("step '{}' is twice in the sequence", w[0]));
        }
        if !(file.timeout_s > 0.0 && file.idle_s > 0.0) {
            return Err("timeout_s and idle_s must be positive".into());
        }
        if file.step_from == StepSource::Zone {
            if file.step_zones.is_empty() {
                return Err("step_from = \"zone\" needs [[step_zone]] entries".into());
            }
            for z in &file.step_zones {
                if z.polygon.len() < 3 {
                    return Err(format!(
                        "the zone of step '{}' needs at least 3 points",
                        z.step
                    ));
                }
            }
        }
        Ok(file)
    }

    pub fn checker(&self) -> Checker {
        Checker::new(ComplianceConfig {
            sequence: self.sequence.clone(),
            timeout_ms: (self.timeout_s * 1000.0) as u64,
            idle_ms: (self.idle_s * 1000.0) as u64,
            merge_ms: self.merge_ms,
            min_step_ms: self.min_step_ms,
        })
    }

    /// The step a frame shows, from its regions: (label, normalized box, confidence).
    pub fn step_of_frame<'a>(&'a self, regions: &[(&str, [f64; 4], f64)]) -> Option<&'a str> {
        match self.step_from {
            StepSource::Zone => {
                let (_, b, _) = regions
                    .iter()
                    .filter(|(l, _, _)| *l == self.object_label)
                    .max_by(|a, b| a.2.total_cmp(&b.2))?;
                let centre = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
                self.step_zones
                    .iter()
                    .find(|z| in_polygon(&z.polygon, centre))
                    .map(|z| z.step.as_str())
            }
            StepSource::Label => regions
                .iter()
                .filter(|(l, _, _)| self.sequence.iter().any(|s| s == l))
                .max_by(|a, b| a.2.total_cmp(&b.2))
                .and_then(|(l, _, _)| self.sequence.iter().find(|s| s == l))
                .map(String::as_str),
        }
    }
}

impl Cycle {
    /// The `compliance` record of the cycle: labels, times and flags only.
    pub fn record(&self) -> ComplianceCycle {
        ComplianceCycle {
            version: 1,
            cycle: self.number,
            status: self.status(),
            start: format_time(self.start_ns),
            end: format_time(self.end_ns),
            cycle_time_s: self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9,
            steps: self
                .steps
                .iter()
                .map(|s| CycleStep {
                    step: s.label.clone(),
                    start: format_time(s.start_ns),
                    end: format_time(s.end_ns),
                    duration_s: (s.end_ns - s.start_ns) as f64 / 1e9,
                })
                .collect(),
            missing: self.missing.clone(),
            extra: self.extra.clone(),
            out_of_order: self.out_of_order.clone(),
            timed_out: self.timed_out,
        }
    }
}

impl Step {
    /// The step as a `veil-step` event.
    pub fn event(&self) -> StepEvent {
        StepEvent {
            step: self.label.clone(),
            start: format_time(self.start_ns),
            end: format_time(self.end_ns),
            duration_s: (self.end_ns - self.start_ns) as f64 / 1e9,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceConfig {
    /// The expected sequence of step labels (each once).
    pub sequence: Vec<String>,
    /// A cycle still open this long after its start is closed as timed out.
    pub timeout_ms: u64,
    /// No step for this long closes the open cycle.
    pub idle_ms: u64,
    /// A label gone for less than this and back is the same occurrence.
    pub merge_ms: u64,
    /// Occurrences shorter than this are flicker, not steps.
    pub min_step_ms: u64,
}

/// One step occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub label: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A pair of expected steps done in the wrong order: `after` was expected after `before`.
pub use veil_wire::event::Swap;

/// A closed cycle and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    pub number: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub steps: Vec<Step>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub out_of_order: Vec<Swap>,
    pub timed_out: bool,
}

impl Cycle {
    pub fn in_order(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.out_of_order.is_empty()
            && !self.timed_out
    }

    /// `in_order`, or the first of `timeout`, `missing`, `out_of_order`, `extra` that applies
    /// (every flag is in the record as well).
    pub fn status(&self) -> CycleStatus {
        if self.in_order() {
            CycleStatus::InOrder
        } else if self.timed_out {
            CycleStatus::Timeout
        } else if !self.missing.is_empty() {
            CycleStatus::Missing
        } else if !self.out_of_order.is_empty() {
            CycleStatus::OutOfOrder
        } else {
            CycleStatus::Extra
        }
    }
}

/// What happened at one frame: occurrences that ended, and cycles that closed.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    pub steps: Vec<Step>,
    pub cycles: Vec<Cycle>,
}

#[derive(Debug)]
pub struct Checker {
    config: ComplianceConfig,
    /// The occurrence in progress: label, start, last seen.
    current: Option<(String, u64, u64)>,
    /// The open cycle: start and its occurrences so far.
    cycle: Option<(u64, Vec<Step>)>,
    cycles: u64,
}

impl Checker {
    pub fn new(config: ComplianceConfig) -> Checker {
        Checker {
            config,
            current: None,
            cycle: None,
            cycles: 0,
        }
    }

    fn config(&self) -> &ComplianceConfig {
        &self.config
    }

    /// The step being performed at `t_ns` (`None`: none).
    pub fn observe(&mut self, label: Option<&str>, t_ns: u64) -> Output {
        let mut out = Output::default();
        let ms = |d: u64| d / 1_000_000;
        let merge = self.config().merge_ms;
        // The occurrence in progress ends when another label shows, or its own is gone too long.
        if let Some((cur, _, last)) = self.current.as_mut() {
            if label == Some(cur.as_str()) {
                *last = t_ns;
            } else if label.is_some() || ms(t_ns.saturating_sub(*last)) >= merge {
                self.end_current(&mut out);
            }
        }
        if self.current.is_none()
            && let Some(l) = label
        {
            self.step_started(l, t_ns, &mut out);
            self.current = Some((l.to_owned(), t_ns, t_ns));
        }
        self.check_time(t_ns, &mut out);
        out
    }

    /// Closes what is open (end of stream): the occurrence in progress, then the cycle.
    pub fn finish(&mut self, t_ns: u64) -> Output {
        let mut out = Output::default();
        self.end_current(&mut out);
        if let Some((start, steps)) = self.cycle.take() {
            let end = steps.last().map_or(t_ns, |s| s.end_ns);
            out.cycles.push(self.judge(start, end, steps, false));
        }
        out
    }

    /// Ends the occurrence in progress; a long enough one is a step.
    fn end_current(&mut self, out: &mut Output) {
        let Some((label, start_ns, end_ns)) = self.current.take() else {
            return;
        };
        if end_ns.saturating_sub(start_ns) / 1_000_000 >= self.config().min_step_ms {
            let step = Step {
                label,
                start_ns,
                end_ns,
            };
            self.step_ended(step.clone(), out);
            out.steps.push(step);
        }
    }

    fn step_started(&mut self, label: &str, t_ns: u64, out: &mut Output) {
        let first = self.config().sequence.first().map(String::as_str);
        // The first expected step again, after later steps: the next part has begun.
        let restart = self.cycle.as_ref().is_some_and(|(_, steps)| {
            first == Some(label) && steps.iter().any(|s| Some(s.label.as_str()) != first)
        });
        if restart && let Some((start, steps)) = self.cycle.take() {
            let end = steps.last().map_or(t_ns, |s| s.end_ns);
            out.cycles.push(self.judge(start, end, steps, false));
        }
        if self.cycle.is_none() {
            self.cycle = Some((t_ns, Vec::new()));
        }
    }

    fn step_ended(&mut self, step: Step, out: &mut Output) {
        let Some((start, steps)) = self.cycle.as_mut() else {
            return;
        };
        steps.push(step);
        let sequence = &self.config.sequence;
        let all_seen = sequence.iter().all(|e| steps.iter().any(|s| &s.label == e));
        // Complete: every expected step seen and the one just ended is the last expected one,
        // or everything is there and nothing more is expected.
        let last_expected = sequence
            .last()
            .is_some_and(|l| steps.last().is_some_and(|s| &s.label == l));
        if all_seen && (last_expected || steps.len() >= sequence.len()) {
            let (start, steps) = (*start, std::mem::take(steps));
            self.cycle = None;
            let end = steps.last().map_or(start, |s| s.end_ns);
            out.cycles.push(self.judge(start, end, steps, false));
        }
    }

    fn check_time(&mut self, t_ns: u64, out: &mut Output) {
        let Some((start, steps)) = &self.cycle else {
            return;
        };
        let ms = |d: u64| d / 1_000_000;
        let last_activity = self
            .current
            .as_ref()
            .map(|c| c.2)
            .or(steps.last().map(|s| s.end_ns))
            .unwrap_or(*start);
        let timed_out = ms(t_ns.saturating_sub(*start)) >= self.config().timeout_ms;
        let idle = self.current.is_none()
            && ms(t_ns.saturating_sub(last_activity)) >= self.config().idle_ms;
        if (timed_out || idle)
            && let Some((start, mut steps)) = self.cycle.take()
        {
            // A step still in progress at the timeout belongs to this cycle.
            if timed_out && let Some((cur, s, last)) = self.current.take() {
                steps.push(Step {
                    label: cur,
                    start_ns: s,
                    end_ns: last,
                });
            }
            let end = if timed_out { t_ns } else { last_activity };
            out.cycles.push(self.judge(start, end, steps, timed_out));
        }
    }

    fn judge(&mut self, start_ns: u64, end_ns: u64, steps: Vec<Step>, timed_out: bool) -> Cycle {
        self.cycles += 1;
        let sequence = &self.config().sequence;
        let missing = sequence
            .iter()
            .filter(|e| !steps.iter().any(|s| &s.label == *e))
            .cloned()
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut extra = Vec::new();
        let mut firsts = Vec::new();
        for s in &steps {
            if !sequence.contains(&s.label) || !seen.insert(s.label.clone()) {
                extra.push(s.label.clone());
            } else {
                firsts.push(s.label.clone());
            }
        }
        // Every pair of expected steps whose first occurrences came in the wrong order.
        let rank = |l: &str| sequence.iter().position(|e| e == l).unwrap_or(usize::MAX);
        let mut out_of_order = Vec::new();
        for (i, a) in firsts.iter().enumerate() {
            for b in &firsts[i + 1..] {
                if rank(b) < rank(a) {
                    out_of_order.push(Swap {
                        before: b.clone(),
                        after: a.clone(),
                    });
                }
            }
        }
        Cycle {
            number: self.cycles,
            start_ns,
            end_ns,
            steps,
            missing,
            extra,
            out_of_order,
            timed_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn checker() -> Checker {
        Checker::new(ComplianceConfig {
            sequence: ["pick", "place", "fasten", "inspect"]
                .map(String::from)
                .to_vec(),
            timeout_ms: 60_000,
            idle_ms: 20_000,
            merge_ms: 500,
            min_step_ms: 300,
        })
    }

    /// Feeds a script of (label, seconds) at 10 frames/s, each label held for its seconds, with
    /// `None` frames between; returns the cycles closed (the end of stream included).
    fn run(script: &[(Option<&str>, f64)]) -> Vec<Cycle> {
        let mut c = checker();
        let mut t = 0u64;
        let mut cycles = Vec::new();
        for &(label, secs) in script {
            for _ in 0..(secs * 10.0).round() as u64 {
                cycles.extend(c.observe(label, t).cycles);
                t += S / 10;
            }
        }
        cycles.extend(c.finish(t).cycles);
        cycles
    }

    fn steps(labels: &[&'static str]) -> Vec<(Option<&'static str>, f64)> {
        labels
            .iter()
            .flat_map(|l| [(Some(*l), 2.0), (None, 1.0)])
            .collect()
    }

    #[test]
    fn a_correct_cycle_is_in_order_with_its_steps_and_time() {
        let cycles = run(&steps(&["pick", "place", "fasten", "inspect"]));
        assert_eq!(cycles.len(), 1);
        let c = &cycles[0];
        assert_eq!(c.status().as_str(), "in_order");
        assert_eq!(c.steps.len(), 4);
        assert_eq!(c.steps[1].label, "place");
        // pick starts at 0, inspect ends at 9 s + 1.9 s.
        assert_eq!((c.start_ns, c.end_ns), (0, 109 * S / 10));
    }

    #[test]
    fn a_skipped_step_is_missing() {
        let mut script = steps(&["pick", "place", "inspect"]);
        script.extend(steps(&["pick", "place", "fasten", "inspect"]));
        let cycles = run(&script);
        assert_eq!(cycles.len(), 2);
        assert_eq!(cycles[0].status().as_str(), "missing");
        assert_eq!(cycles[0].missing, ["fasten"]);
        assert!(cycles[0].extra.is_empty() && cycles[0].out_of_order.is_empty());
        assert_eq!(cycles[1].status().as_str(), "in_order");
    }

    #[test]
    fn a_swapped_pair_is_out_of_order() {
        let cycles = run(&steps(&["pick", "fasten", "place", "inspect"]));
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].status().as_str(), "out_of_order");
        assert_eq!(
            cycles[0].out_of_order,
            [Swap {
                before: "place".into(),
                after: "fasten".into()
            }]
        );
        assert!(cycles[0].missing.is_empty() && cycles[0].extra.is_empty());
    }

    #[test]
    fn an_extra_step_is_extra() {
        let cycles = run(&steps(&["pick", "place", "place", "fasten", "inspect"]));
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].status().as_str(), "extra");
        assert_eq!(cycles[0].extra, ["place"]);
        let cycles = run(&steps(&["pick", "place", "polish", "fasten", "inspect"]));
        assert_eq!(cycles[0].extra, ["polish"]);
        assert!(cycles[0].missing.is_empty() && cycles[0].out_of_order.is_empty());
    }

    #[test]
    fn a_cycle_that_takes_too_long_times_out() {
        let mut script = steps(&["pick", "place"]);
        script.push((Some("fasten"), 70.0));
        let cycles = run(&script);
        assert_eq!(cycles[0].status().as_str(), "timeout");
        assert!(cycles[0].timed_out);
        assert_eq!(cycles[0].missing, ["inspect"]);
        assert_eq!(cycles[0].end_ns - cycles[0].start_ns, 60 * S);
    }

    #[test]
    fn flicker_is_not_a_step_and_short_gaps_are_bridged() {
        let script = [
            (Some("pick"), 1.0),
            (None, 0.3),
            (Some("pick"), 1.0),
            (Some("polish"), 0.1),
            (Some("place"), 2.0),
            (Some("fasten"), 2.0),
            (Some("inspect"), 2.0),
        ];
        let cycles = run(&script);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].status().as_str(), "in_order", "{:?}", cycles[0]);
        assert_eq!(cycles[0].steps[0].end_ns, 22 * S / 10);
    }

    #[test]
    fn the_file_names_steps_and_where_they_happen() {
        let file = ComplianceFile::parse(
            r#"
sequence = ["pick", "place"]
object_label = "hand"
[[step_zone]]
step = "pick"
polygon = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
[[step_zone]]
step = "place"
polygon = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
"#,
        )
        .unwrap();
        let hand = |x: f64, c: f64| ("hand", [x, 0.4, x + 0.1, 0.5], c);
        assert_eq!(file.step_of_frame(&[hand(0.1, 0.9)]), Some("pick"));
        assert_eq!(
            file.step_of_frame(&[hand(0.1, 0.5), hand(0.7, 0.9)]),
            Some("place")
        );
        assert_eq!(
            file.step_of_frame(&[("person", [0.1, 0.4, 0.2, 0.5], 0.9)]),
            None
        );
        assert!(ComplianceFile::parse("sequence = []").is_err());
        assert!(ComplianceFile::parse("sequence = [\"a\", \"a\"]\nstep_from = \"label\"").is_err());
        assert!(
            ComplianceFile::parse("sequence = [\"a\"]").is_err(),
            "zones needed"
        );
        let labels =
            ComplianceFile::parse("sequence = [\"a\", \"b\"]\nstep_from = \"label\"").unwrap();
        assert_eq!(
            labels.step_of_frame(&[
                ("b", [0.0; 4], 0.4),
                ("a", [0.0; 4], 0.8),
                ("z", [0.0; 4], 1.0)
            ]),
            Some("a")
        );
        let c = &run(&steps(&["pick", "fasten", "place", "inspect"]))[0];
        let body = serde_json::to_value(c.record()).unwrap();
        assert_eq!(body["status"], "out_of_order");
        assert_eq!(body["out_of_order"][0]["before"], "place");
        assert_eq!(body["steps"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn idleness_closes_a_cycle() {
        let mut script = steps(&["pick", "place"]);
        script.push((None, 25.0));
        script.extend(steps(&["pick", "place", "fasten", "inspect"]));
        let cycles = run(&script);
        assert_eq!(cycles.len(), 2);
        assert_eq!(cycles[0].missing, ["fasten", "inspect"]);
        assert!(!cycles[0].timed_out);
        assert_eq!(cycles[1].status().as_str(), "in_order");
    }
}
