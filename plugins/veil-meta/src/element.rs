// SPDX-License-Identifier: MIT OR Apache-2.0
//! What every Veil element does the same way, as gst-plugins-rs elements of one family do:
//! debug categories named `veil<element>`, caps kept whenever they come (before `start` too),
//! one "not negotiated" error, property values read one way, configuration files and start
//! times parsed with one kind of message, pad templates of an in-place filter.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gst::glib;
use gst::prelude::*;

/// The licence token the plugins declare to GStreamer. GStreamer loads only plugins whose
/// licence is on its own list, where `MIT OR Apache-2.0` is not; `MIT/X11` is its token for the
/// MIT side of Veil's dual licence (`LICENSE-MIT`, `LICENSE-APACHE`).
pub const GST_PLUGIN_LICENSE: &str = "MIT/X11";

/// The debug category of a Veil element: `veil<element>` (e.g. `GST_DEBUG=veilaggregator:5`),
/// so none collides with GStreamer's own (`aggregator` is GstAggregator's).
pub fn debug_category(element: &str, description: &str) -> gst::DebugCategory {
    gst::DebugCategory::new(
        &format!("veil{element}"),
        gst::DebugColorFlags::empty(),
        Some(description),
    )
}

/// Posts the one "not negotiated" error every Veil element uses for a buffer that arrives with
/// no caps to read it by, and returns the flow error to give back.
pub fn not_negotiated(element: &impl IsA<gst::Element>) -> gst::FlowError {
    gst::element_error!(
        element,
        gst::CoreError::Negotiation,
        ("Not negotiated: a buffer arrived before any caps")
    );
    gst::FlowError::NotNegotiated
}

/// The video caps an element negotiated, kept apart from its run-time state, so caps that come
/// before `start` (or between `stop` and `start`) are used rather than lost.
#[derive(Debug, Default)]
pub struct VideoCaps(Mutex<Option<gst_video::VideoInfo>>);

impl VideoCaps {
    /// Reads and keeps `caps`; a loggable error if they are not raw video.
    pub fn set(
        &self,
        cat: gst::DebugCategory,
        caps: &gst::Caps,
    ) -> Result<gst_video::VideoInfo, gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(cat, "invalid video caps {}", caps))?;
        *self.0.lock().unwrap() = Some(info.clone());
        Ok(info)
    }

    pub fn get(&self) -> Option<gst_video::VideoInfo> {
        self.0.lock().unwrap().clone()
    }
}

/// A string property's value; empty counts as unset.
pub fn string_value(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}

/// A path property's value; empty counts as unset.
pub fn path_value(value: &glib::Value) -> Option<PathBuf> {
    string_value(value).map(PathBuf::from)
}

/// A path as a property value (unset: `None`).
pub fn path_to_value(path: &Option<PathBuf>) -> glib::Value {
    path.as_ref().map(|p| p.display().to_string()).to_value()
}

/// A configuration file named by `property`: read and parsed; the error names the property,
/// the file and the reason.
pub fn read_config_file<T>(
    property: &str,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, gst::ErrorMessage> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        gst::error_msg!(
            gst::ResourceError::OpenRead,
            ("Cannot read {} '{}': {}", property, path.display(), e)
        )
    })?;
    parse(&text).map_err(|e| {
        gst::error_msg!(
            gst::LibraryError::Settings,
            ("Invalid {} '{}': {}", property, path.display(), e)
        )
    })
}

/// A `start-time` property: RFC 3339 or seconds since the epoch → ns since the epoch.
pub fn start_time_setting(text: Option<&str>) -> Result<Option<u64>, gst::ErrorMessage> {
    match text {
        None => Ok(None),
        Some(text) => crate::time::parse_start_time(text).map(Some).ok_or_else(|| {
            gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "Invalid start-time '{}': expected RFC 3339 (2026-11-23T10:00:00Z) or seconds since the epoch",
                    text
                )
            )
        }),
    }
}

/// The `src` and `sink` pad templates of an in-place filter: both always present, same caps.
pub fn in_place_pad_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
            .expect("static pad template")
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_messages_that_name_them() {
        gst::init().unwrap();
        assert_eq!(start_time_setting(None).unwrap(), None);
        assert_eq!(
            start_time_setting(Some("1795428000")).unwrap(),
            Some(1_795_428_000_000_000_000)
        );
        let e = start_time_setting(Some("soon")).unwrap_err();
        assert!(e.to_string().contains("start-time 'soon'"), "{e}");
        let missing = Path::new("/nonexistent/zones.toml");
        let e = read_config_file("zones-file", missing, |t| Ok(t.len())).unwrap_err();
        assert!(
            e.to_string()
                .contains("zones-file '/nonexistent/zones.toml'"),
            "{e}"
        );
        assert!(string_value(&"".to_value()).is_none());
        assert_eq!(path_value(&"/a".to_value()), Some(PathBuf::from("/a")));
    }

    #[test]
    fn caps_are_kept_whenever_they_come() {
        gst::init().unwrap();
        let slot = VideoCaps::default();
        assert!(slot.get().is_none());
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", 8)
            .field("height", 6)
            .field("framerate", gst::Fraction::new(10, 1))
            .build();
        let cat = debug_category("test", "test");
        assert_eq!(slot.set(cat, &caps).unwrap().width(), 8);
        assert_eq!(slot.get().unwrap().height(), 6);
        assert!(
            slot.set(cat, &gst::Caps::new_empty_simple("audio/x-raw"))
                .is_err()
        );
        assert_eq!(cat.name(), "veiltest");
    }
}
