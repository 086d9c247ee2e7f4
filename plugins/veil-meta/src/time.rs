// SPDX-License-Identifier: MIT OR Apache-2.0
//! Capture time (docs/design.md, "Contracts between the parts", **Time**): UTC from a
//! `start-time` property plus PTS for files, from the system clock at the first frame otherwise.

pub use veil_wire::time::{now_ns, parse_setting as parse_start_time};

/// Maps PTS to capture time: anchored at the first frame seen.
#[derive(Debug, Clone, Default)]
pub struct CaptureClock {
    fixed_start_ns: Option<u64>,
    anchor: Option<(u64, u64)>,
}

impl CaptureClock {
    /// `fixed_start_ns`: capture time of the first frame (a file's start time); `None` for now.
    pub fn new(fixed_start_ns: Option<u64>) -> Self {
        CaptureClock {
            fixed_start_ns,
            anchor: None,
        }
    }

    /// Capture time of the frame with this PTS.
    pub fn capture_ns(&mut self, pts: u64) -> u64 {
        let fixed = self.fixed_start_ns;
        let (anchor_ns, first_pts) = *self
            .anchor
            .get_or_insert_with(|| (fixed.unwrap_or_else(now_ns), pts));
        anchor_ns + pts.saturating_sub(first_pts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_time_follows_pts_from_the_first_frame() {
        let mut clock = CaptureClock::new(Some(1_000));
        assert_eq!(clock.capture_ns(500), 1_000);
        assert_eq!(clock.capture_ns(800), 1_300);
    }
}
