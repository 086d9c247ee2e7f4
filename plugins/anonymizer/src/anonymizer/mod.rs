// SPDX-License-Identifier: MIT OR Apache-2.0
//! `anonymizer`: masks faces (or any labels) found by an upstream `inferfilter`, in place, and
//! fails closed: frames nobody looked at are blacked out.

use gst::glib;
use gst::prelude::*;

mod imp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstVeilAnonymizerMode")]
pub enum Mode {
    #[default]
    #[enum_value(
        name = "Blur (three-pass box blur, cost independent of strength)",
        nick = "blur"
    )]
    Blur = 0,
    #[enum_value(name = "Pixelate (blocks of block-size)", nick = "pixelate")]
    Pixelate = 1,
    #[enum_value(name = "Solid colour", nick = "solid")]
    Solid = 2,
    #[enum_value(name = "Black out the whole frame", nick = "blackout")]
    Blackout = 3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstVeilAnonymizerShape")]
pub enum MaskShape {
    #[default]
    #[enum_value(name = "Box", nick = "box")]
    Box = 0,
    #[enum_value(name = "Ellipse inscribed in the box", nick = "ellipse")]
    Ellipse = 1,
}

glib::wrapper! {
    pub struct Anonymizer(ObjectSubclass<imp::Anonymizer>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    MaskShape::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "anonymizer",
        gst::Rank::NONE,
        Anonymizer::static_type(),
    )
}
