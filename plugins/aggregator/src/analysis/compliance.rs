// SPDX-License-Identifier: MIT OR Apache-2.0
//! Action compliance: the step a frame shows (an object in a step zone, or a region label),
//! occurrences of steps, and cycles checked against the expected sequence
//! ([`crate::compliance`]). Structure only: step events and cycle records, no windows, and no
//! way to keep a frame (the plan has no image setting).

use veil_meta::time::Break;
use veil_wire::event::Event;

use super::{Analysis, Frame, FramePixels, Output};
use crate::compliance::{Checker, ComplianceFile, Output as Occurrences};

/// What a compliance analysis needs: the station's file, nothing else.
#[derive(Debug, Clone)]
pub struct CompliancePlan {
    pub file: ComplianceFile,
}

pub struct Compliance {
    file: ComplianceFile,
    checker: Checker,
}

impl Compliance {
    pub fn new(plan: CompliancePlan) -> Compliance {
        Compliance {
            checker: plan.file.checker(),
            file: plan.file,
        }
    }
}

fn events(out: Occurrences) -> Vec<Event> {
    out.steps
        .iter()
        .map(|s| Event::Step(s.event()))
        .chain(out.cycles.iter().map(|c| Event::Compliance(c.record())))
        .collect()
}

impl Analysis for Compliance {
    fn frame(&mut self, frame: &Frame, _: &dyn FramePixels) -> Result<Output, String> {
        let regions = frame.regions();
        let step = self.file.step_of_frame(&regions).map(str::to_owned);
        Ok(Output {
            events: events(self.checker.observe(step.as_deref(), frame.capture_ns)),
            object_ids: Vec::new(),
        })
    }

    fn discontinuity(&mut self, brk: &Break) -> Vec<Event> {
        // A step or cycle in progress ends at the last frame before the break.
        events(self.checker.finish(brk.last_before_ns))
    }

    fn finish(&mut self, end_ns: u64) -> Vec<Event> {
        events(self.checker.finish(end_ns))
    }
}
