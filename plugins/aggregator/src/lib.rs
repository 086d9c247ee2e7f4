// SPDX-License-Identifier: MIT OR Apache-2.0
//! Veil aggregator plugin: the `aggregator` element.
//!
//! Pure logic: [`tracker`] (Kalman + ByteTrack association), [`attention`] (frontal head pose),
//! [`zones`], [`metrics`] (windows), [`demographics`] (small-cell suppression) [`compliance`]
//! (step sequences) and [`inspection`] (parts, OK/NG); the GStreamer
//! glue is in [`aggregator`].

use gst::glib;

pub mod aggregator;
pub mod analysis;
pub mod attention;
pub mod compliance;
pub mod demographics;
pub mod images;
pub mod inspection;
pub mod metrics;
pub mod tracker;
pub mod zones;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    veil_meta::status::register();
    aggregator::register(plugin)
}

gst::plugin_define!(
    veilaggregator,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
