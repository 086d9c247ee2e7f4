// SPDX-License-Identifier: MIT OR Apache-2.0
//! Veil inference plugin: the `inferfilter` element.
//!
//! Pure logic (pre-processing, decoders, NMS) lives in plain modules with unit tests; the
//! GStreamer glue is in [`inferfilter`].
#![allow(clippy::new_without_default)]

use gst::glib;

pub mod decoders;
pub mod inferfilter;
pub mod model;
pub mod orientation;
pub mod preprocess;
pub mod tiling;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    veil_meta::status::register();
    inferfilter::register(plugin)
}

gst::plugin_define!(
    veilinference,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
