//! `aggregator`: tracks people across frames (ephemeral ids written into the ROI metas) and
//! turns them into anonymous audience metrics per UTC-aligned window, emitted as custom
//! downstream events and bus messages (`veil_meta::events`).

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct Aggregator(ObjectSubclass<imp::Aggregator>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "aggregator",
        gst::Rank::NONE,
        Aggregator::static_type(),
    )
}
