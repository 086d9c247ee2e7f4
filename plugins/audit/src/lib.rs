// SPDX-License-Identifier: MIT OR Apache-2.0
//! Veil audit plugin: the `auditsink` element, the only door out of the device.
//!
//! Pure parts: [`spool`] (sled, one per chain unit), [`writer`] (chaining, checkpoints, group
//! flushes, the spool's bound), [`publisher`] (Zenoh, acknowledgements, replay) and
//! [`pipeline_config`] (the `config` record); the GStreamer glue is in [`auditsink`]. The wire
//! format itself is in the `veil-wire` crate.

use gst::glib;

pub mod auditsink;
pub mod pipeline_config;
pub mod publisher;
pub mod spool;
pub mod writer;

pub use auditsink::{MSG_ACKED, MSG_EOS, MSG_QUEUED};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    veil_meta::status::register();
    auditsink::register(plugin)
}

gst::plugin_define!(
    veilaudit,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
