// SPDX-License-Identifier: MIT OR Apache-2.0
//! Time, one way: UTC nanoseconds since the epoch inside the code, RFC 3339 with nanoseconds
//! and a `Z` suffix (`2026-11-23T10:00:00.000000000Z`) wherever a time is written — record
//! envelopes, event bodies, logs of the service. Readers accept any RFC 3339 time.

/// RFC 3339 in UTC with nanoseconds, `Z` suffix: the only form Veil writes.
pub fn format_time(ns_since_epoch: u64) -> String {
    let secs = (ns_since_epoch / 1_000_000_000) as i64;
    let nanos = (ns_since_epoch % 1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Nanoseconds since the epoch of an RFC 3339 time, if it is one (and not before 1970).
pub fn parse_time(text: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    u64::try_from(t.timestamp_nanos_opt()?).ok()
}

/// A time given in a setting (an element property, a command-line flag): RFC 3339, or seconds
/// since the epoch (fractions allowed).
pub fn parse_setting(text: &str) -> Option<u64> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some((secs * 1e9) as u64);
    }
    parse_time(text)
}

/// Now, in nanoseconds since the epoch (UTC).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_format_out_any_rfc3339_in() {
        assert_eq!(format_time(1_500_000_000), "1970-01-01T00:00:01.500000000Z");
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            parse_time("1970-01-01T01:00:01.5+01:00"),
            Some(1_500_000_000)
        );
        let t = 1_795_428_000_123_456_789;
        assert_eq!(parse_time(&format_time(t)), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn settings_take_rfc3339_or_epoch_seconds() {
        assert_eq!(
            parse_setting("2026-11-23T10:00:00Z"),
            Some(1_795_428_000_000_000_000)
        );
        assert_eq!(parse_setting("1795428000"), Some(1_795_428_000_000_000_000));
        assert_eq!(parse_setting("-5"), None);
        assert_eq!(parse_setting("soon"), None);
    }
}
