//! Capture time (docs/design.md, "Contracts between the parts", **Time**): UTC from a
//! `start-time` property plus PTS for files, from the system clock at the first frame otherwise.

/// `start-time`: RFC 3339 (`2026-11-23T10:00:00Z`) or seconds since the epoch → ns since epoch.
pub fn parse_start_time(text: &str) -> Option<u64> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return (secs >= 0.0).then_some((secs * 1e9) as u64);
    }
    let t = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    u64::try_from(t.timestamp_nanos_opt()?).ok()
}

/// Now, in ns since the epoch (UTC).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

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
    fn start_time_accepts_rfc3339_and_epoch_seconds() {
        assert_eq!(
            parse_start_time("2026-11-23T10:00:00Z"),
            Some(1_795_428_000_000_000_000)
        );
        assert_eq!(
            parse_start_time("1795428000"),
            Some(1_795_428_000_000_000_000)
        );
        assert_eq!(parse_start_time("yesterday"), None);
    }

    #[test]
    fn capture_time_follows_pts_from_the_first_frame() {
        let mut clock = CaptureClock::new(Some(1_000));
        assert_eq!(clock.capture_ns(500), 1_000);
        assert_eq!(clock.capture_ns(800), 1_300);
    }
}
