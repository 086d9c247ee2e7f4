// SPDX-License-Identifier: MIT OR Apache-2.0
//! `aggregator`: tracks people across frames (ephemeral ids written into the ROI metas) and
//! turns them into anonymous audience metrics per UTC-aligned window, emitted as custom
//! downstream events and bus messages (`veil_meta::events`).

use gst::glib;
use gst::prelude::*;

mod imp;
mod settings;

/// Which inspected frames may leave the device as `image` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstVeilImageRetention")]
pub enum ImageRetention {
    #[default]
    #[enum_value(name = "None: no image ever leaves", nick = "none")]
    None = 0,
    #[enum_value(
        name = "Failures: the JPEG of each NG part's frame; OK frames never leave",
        nick = "failures"
    )]
    Failures = 1,
    #[enum_value(
        name = "All: every inspected part's frame (explicit opt-in)",
        nick = "all"
    )]
    All = 2,
}

glib::wrapper! {
    pub struct Aggregator(ObjectSubclass<imp::Aggregator>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    ImageRetention::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "aggregator",
        gst::Rank::NONE,
        Aggregator::static_type(),
    )
}
