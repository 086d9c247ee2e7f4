// SPDX-License-Identifier: MIT OR Apache-2.0
//! `auditsink`: the end of a Veil pipeline and the only door out of the device. It turns the
//! aggregator's events (and, only if asked, per-frame boxes without track ids) into signed,
//! hash-chained records, spools them durably and publishes them over Zenoh until the store
//! acknowledges them. It never publishes pixels.

use gst::glib;
use gst::prelude::*;

mod imp;

pub use imp::{MSG_ACKED, MSG_EOS, MSG_QUEUED};

/// What happens when the spool is full.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVeilAuditSpoolFull")]
pub enum SpoolFull {
    /// New records are refused and counted; an `integrity` record says how many, once there is
    /// room again. The video never waits.
    #[default]
    #[enum_value(name = "Drop new records and record the loss", nick = "drop-new")]
    DropNew = 0,
    /// Wait for room: the video waits for the store.
    #[enum_value(name = "Block until the store acknowledges", nick = "block")]
    Block = 1,
}

glib::wrapper! {
    pub struct AuditSink(ObjectSubclass<imp::AuditSink>)
        @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    SpoolFull::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "auditsink",
        gst::Rank::NONE,
        AuditSink::static_type(),
    )
}
