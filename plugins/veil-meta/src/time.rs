// SPDX-License-Identifier: MIT OR Apache-2.0
//! Capture time (docs/design.md, "Contracts between the parts", **Time**) and the breaks in it.
//!
//! A frame's capture time is UTC, ns since the epoch: the first frame's anchor (a file's
//! `start-time`, the pipeline clock's mapping to UTC for a live source, the system clock
//! otherwise) plus how far the stream's running time has moved since. [`Timeline`] keeps that
//! mapping honest when the stream's time breaks, which live cameras do: an outage (no frames for
//! a while), timestamps that start again from zero after a reconnect, a jump forward, a step
//! back. It names each break ([`DiscontinuityCause`]) and keeps capture time monotonic, so no
//! window is emitted twice or out of order and no duration spans a break.

pub use veil_wire::event::DiscontinuityCause;
pub use veil_wire::time::{now_ns, parse_setting as parse_start_time};

/// A break in the stream's time, between two consecutive frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Break {
    pub cause: DiscontinuityCause,
    /// Capture time of the last frame before the break (ns since the epoch).
    pub last_before_ns: u64,
    /// Capture time of the first frame after it, on the corrected timeline (ns, ≥
    /// `last_before_ns`).
    pub first_after_ns: u64,
    /// How far the stream's running time moved between the two frames (ns; negative: back).
    pub timestamp_step_ns: i64,
}

impl Break {
    /// The wire form (record times as RFC 3339 strings).
    pub fn to_wire(&self) -> veil_wire::event::TimeDiscontinuity {
        use veil_wire::time::format_time;
        veil_wire::event::TimeDiscontinuity {
            cause: self.cause,
            last_before: format_time(self.last_before_ns),
            first_after: format_time(self.first_after_ns),
            gap_s: (self.first_after_ns - self.last_before_ns) as f64 / 1e9,
            timestamp_step_s: self.timestamp_step_ns as f64 / 1e9,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    capture_ns: u64,
    running_ns: u64,
    clock_ns: Option<u64>,
}

/// Maps a stream's running time to capture time across breaks.
///
/// Per frame it takes the buffer's running time and, for a live source, the pipeline clock's
/// running time when the frame arrived (what the clock says really passed). Between two frames,
/// with `step` the running-time step, `elapsed` the clock's and `max_gap` the setting:
///
/// | condition (first that applies) | cause | capture time of the new frame |
/// |---|---|---|
/// | `step < −max_gap` (live: or any step back while `elapsed > max_gap`), new running time `< max_gap` | timestamp reset | previous + `elapsed` (live) or + one frame interval (file); anchored again there |
/// | the same, running time not under `max_gap` | backward step | same |
/// | live, running time ahead of the clock by more than `max_gap` beyond the most it has been since the last break | forward jump | previous + `elapsed`; anchored again there |
/// | `step > max_gap` | stall | anchor + running time (the timestamps followed the clock) |
/// | otherwise (a regular frame, or timestamps back by up to `max_gap`: jitter) | — | anchor + running time, never before the previous frame |
///
/// A live source's running time is the clock at capture, so a frame is never ahead of the clock
/// by more than the pipeline's smallest latency: a frame that arrives late (the pipeline was
/// busy, a jitter buffer) is no break and keeps its true time, and a stall after a late frame is
/// still a stall. A source whose timestamps count frames rather than follow the clock cannot show
/// an outage this way (its running time does not move while it is away). Without a clock (a file read as fast as it decodes) a forward step cannot be
/// told from a hole in the recording, so it is a stall.
#[derive(Debug, Clone)]
pub struct Timeline {
    max_gap_ns: u64,
    /// (capture, running) of the frame the mapping counts from.
    anchor: Option<(u64, u64)>,
    last: Option<Seen>,
    /// The last regular frame interval (ns).
    frame_ns: u64,
    /// Live: the most a frame's running time has been ahead of the arrival clock since the last
    /// break (the pipeline's smallest latency, negated). A frame late by processing is further
    /// behind, never ahead; one ahead of this by more than `max_gap` comes "from the future".
    lead_ns: Option<i128>,
}

impl Timeline {
    /// `max_gap_ns`: the longest step between two frames that is not a break.
    pub fn new(max_gap_ns: u64) -> Timeline {
        Timeline {
            max_gap_ns,
            anchor: None,
            last: None,
            frame_ns: 0,
            lead_ns: None,
        }
    }

    /// The capture time of a frame at `running_ns`, and the break before it if there was one.
    /// `first_capture_ns` is the anchor, asked for only on the first frame; `clock_ns` is the
    /// pipeline clock's running time at arrival, for live sources.
    pub fn next(
        &mut self,
        running_ns: u64,
        clock_ns: Option<u64>,
        first_capture_ns: impl FnOnce() -> u64,
    ) -> (u64, Option<Break>) {
        let Some(last) = self.last else {
            let capture_ns = first_capture_ns();
            self.anchor = Some((capture_ns, running_ns));
            self.lead_ns = clock_ns.map(|c| running_ns as i128 - c as i128);
            self.last = Some(Seen {
                capture_ns,
                running_ns,
                clock_ns,
            });
            return (capture_ns, None);
        };
        let step = running_ns as i128 - last.running_ns as i128;
        let elapsed = clock_ns
            .zip(last.clock_ns)
            .map(|(now, then)| now as i128 - then as i128);
        let max_gap = self.max_gap_ns as i128;
        // What really passed, when the timestamps cannot say: the clock, or one frame.
        let by_clock = last.capture_ns + elapsed.map_or(self.frame_ns, |e| e.max(0) as u64);
        let lead = clock_ns.map(|c| running_ns as i128 - c as i128);
        let back = step < -max_gap || (step < 0 && elapsed.is_some_and(|e| e > max_gap));
        let (cause, reanchor) = if back {
            let cause = if (running_ns as i128) < max_gap {
                DiscontinuityCause::TimestampReset
            } else {
                DiscontinuityCause::BackwardStep
            };
            (Some(cause), true)
        } else if lead
            .zip(self.lead_ns)
            .is_some_and(|(now, most)| now - most > max_gap)
        {
            (Some(DiscontinuityCause::ForwardJump), true)
        } else if step > max_gap {
            (Some(DiscontinuityCause::Stall), false)
        } else {
            (None, false)
        };
        self.lead_ns = if reanchor {
            lead
        } else {
            lead.map(|now| self.lead_ns.map_or(now, |most| most.max(now)))
        };
        let capture_ns = if reanchor {
            self.anchor = Some((by_clock, running_ns));
            by_clock
        } else {
            let (anchor_capture, anchor_running) = self.anchor.unwrap_or((0, 0));
            let mapped = anchor_capture as i128 + running_ns as i128 - anchor_running as i128;
            // Never before the previous frame (timestamps a little back: jitter).
            u64::try_from(mapped.max(0))
                .unwrap_or(u64::MAX)
                .max(last.capture_ns)
        };
        if cause.is_none() && step > 0 {
            self.frame_ns = step as u64;
        }
        self.last = Some(Seen {
            capture_ns,
            running_ns,
            clock_ns,
        });
        let brk = cause.map(|cause| Break {
            cause,
            last_before_ns: last.capture_ns,
            first_after_ns: capture_ns,
            timestamp_step_ns: step.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        });
        (capture_ns, brk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;
    /// A frame every 100 ms from running time 0, capture anchored at 1000 s.
    const T0: u64 = 1_000 * S;

    fn frames(t: &mut Timeline, from: u64, n: u64, live: bool) -> Vec<(u64, Option<Break>)> {
        (0..n)
            .map(|i| {
                let r = from + i * 100 * MS;
                t.next(r, live.then_some(r + 5 * MS), || T0 + r)
            })
            .collect()
    }

    #[test]
    fn regular_frames_follow_the_running_time_from_the_anchor() {
        let mut t = Timeline::new(2 * S);
        let out = frames(&mut t, 0, 5, false);
        let captures: Vec<u64> = out.iter().map(|o| o.0).collect();
        assert_eq!(
            captures,
            [
                T0,
                T0 + 100 * MS,
                T0 + 200 * MS,
                T0 + 300 * MS,
                T0 + 400 * MS
            ]
        );
        assert!(out.iter().all(|o| o.1.is_none()));
    }

    #[test]
    fn a_stall_keeps_true_time_and_is_named() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 0, 10, true);
        // Nothing for 10 s, then frames again, clock and timestamps agreeing.
        let (capture, brk) = t.next(10_900 * MS, Some(10_905 * MS), || 0);
        assert_eq!(capture, T0 + 10_900 * MS);
        assert_eq!(
            brk,
            Some(Break {
                cause: DiscontinuityCause::Stall,
                last_before_ns: T0 + 900 * MS,
                first_after_ns: T0 + 10_900 * MS,
                timestamp_step_ns: 10 * S as i64,
            })
        );
        // The next frame continues without a break.
        assert_eq!(
            t.next(11 * S, Some(11 * S + 5 * MS), || 0),
            (T0 + 11 * S, None)
        );
    }

    #[test]
    fn timestamps_that_start_again_from_zero_continue_on_the_clock() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 30 * S, 10, true);
        // The camera came back 12 s later (clock) with its timestamps at zero.
        let clock = 30_900 * MS + 5 * MS + 12 * S;
        let (capture, brk) = t.next(0, Some(clock), || 0);
        let last = T0 + 30_900 * MS;
        assert_eq!(capture, last + 12 * S);
        let brk = brk.unwrap();
        assert_eq!(brk.cause, DiscontinuityCause::TimestampReset);
        assert_eq!(
            (brk.last_before_ns, brk.first_after_ns),
            (last, last + 12 * S)
        );
        assert_eq!(brk.timestamp_step_ns, -(30_900 * MS as i64));
        // From there on the new timestamps count from the new anchor.
        let (next, brk) = t.next(100 * MS, Some(clock + 100 * MS), || 0);
        assert_eq!((next, brk), (last + 12 * S + 100 * MS, None));
    }

    #[test]
    fn a_forward_jump_the_clock_did_not_make_is_corrected() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 0, 10, true);
        // Timestamps leap an hour ahead; the clock says 100 ms passed.
        let (capture, brk) = t.next(3_600 * S, Some(1_005 * MS), || 0);
        assert_eq!(capture, T0 + S);
        let brk = brk.unwrap();
        assert_eq!(brk.cause, DiscontinuityCause::ForwardJump);
        assert_eq!(brk.first_after_ns - brk.last_before_ns, 100 * MS);
        assert_eq!(
            t.next(3_600 * S + 100 * MS, Some(1_105 * MS), || 0),
            (T0 + S + 100 * MS, None)
        );
    }

    #[test]
    fn a_backward_step_never_moves_capture_time_back() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 100 * S, 10, false);
        // A file whose timestamps step back 50 s (not to zero): one frame interval on.
        let (capture, brk) = t.next(50 * S, None, || 0);
        let last = T0 + 100_900 * MS;
        assert_eq!(capture, last + 100 * MS);
        let brk = brk.unwrap();
        assert_eq!(brk.cause, DiscontinuityCause::BackwardStep);
        assert_eq!(brk.timestamp_step_ns, -(50_900 * MS as i64));
    }

    #[test]
    fn a_file_with_a_hole_is_a_stall_and_a_step_under_the_setting_is_not_a_break() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 0, 3, false);
        // 1.9 s: under the setting.
        assert_eq!(t.next(2_100 * MS, None, || 0), (T0 + 2_100 * MS, None));
        let (capture, brk) = t.next(60 * S, None, || 0);
        assert_eq!(capture, T0 + 60 * S);
        assert_eq!(brk.unwrap().cause, DiscontinuityCause::Stall);
    }

    #[test]
    fn a_frame_that_arrives_late_is_no_break_and_keeps_its_true_time() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 0, 10, true);
        // The pipeline was busy for 5 s: the next frame arrives late, the ones queued behind
        // it at once.
        assert_eq!(t.next(S, Some(6 * S), || 0), (T0 + S, None));
        assert_eq!(
            t.next(1_100 * MS, Some(6_001 * MS), || 0),
            (T0 + 1_100 * MS, None)
        );
    }

    #[test]
    fn an_outage_after_a_late_frame_is_a_stall_not_a_jump() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 0, 10, true);
        // The last frame before the outage arrives 2.5 s late; the camera is then away 5 s.
        assert_eq!(t.next(S, Some(3_500 * MS), || 0), (T0 + S, None));
        let (capture, brk) = t.next(6 * S, Some(6 * S + 5 * MS), || 0);
        assert_eq!(capture, T0 + 6 * S);
        assert_eq!(brk.unwrap().cause, DiscontinuityCause::Stall);
    }

    #[test]
    fn a_short_run_then_an_outage_then_timestamps_from_zero_is_a_reset() {
        let mut t = Timeline::new(2 * S);
        // 1.5 s of camera, away 5 s by the clock, back with timestamps from zero: the step back
        // (1.4 s) is under max-gap, the clock says it was an outage.
        frames(&mut t, 0, 15, true);
        let (capture, brk) = t.next(0, Some(6_405 * MS), || 0);
        assert_eq!(capture, T0 + 6_400 * MS);
        assert_eq!(brk.unwrap().cause, DiscontinuityCause::TimestampReset);
    }

    #[test]
    fn timestamps_a_little_back_are_jitter_not_a_break() {
        let mut t = Timeline::new(2 * S);
        frames(&mut t, 10 * S, 5, false);
        let last = T0 + 10_400 * MS;
        // 300 ms back: no break, capture time held at the previous frame's.
        assert_eq!(t.next(10_100 * MS, None, || 0), (last, None));
        assert_eq!(t.next(10_500 * MS, None, || 0), (T0 + 10_500 * MS, None));
    }

    #[test]
    fn the_wire_form_gives_seconds_and_times() {
        let brk = Break {
            cause: DiscontinuityCause::TimestampReset,
            last_before_ns: T0,
            first_after_ns: T0 + 12_500 * MS,
            timestamp_step_ns: -20 * S as i64,
        };
        let w = brk.to_wire();
        assert_eq!(w.gap_s, 12.5);
        assert_eq!(w.timestamp_step_s, -20.0);
        assert_eq!(
            w.first_after,
            veil_wire::time::format_time(T0 + 12_500 * MS)
        );
    }
}
