// SPDX-License-Identifier: MIT OR Apache-2.0
//! Veil anonymizer plugin: the `anonymizer` element.
//!
//! Pure logic lives in [`region`] (mask shapes on the chroma grid), [`pixels`] (effects) and
//! [`hold`] (fail-closed mask bookkeeping); the GStreamer glue is in [`anonymizer`].

use gst::glib;

pub mod anonymizer;
pub mod heads;
pub mod hold;
pub mod pixels;
pub mod region;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    veil_meta::status::register();
    anonymizer::register(plugin)
}

gst::plugin_define!(
    veilanonymizer,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
