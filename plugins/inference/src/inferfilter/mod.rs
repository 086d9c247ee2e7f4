// SPDX-License-Identifier: MIT OR Apache-2.0
//! `inferfilter`: runs an ONNX detector on video frames and attaches the results as
//! `GstVideoRegionOfInterestMeta`, plus an inference-status meta on every frame.

use gst::glib;
use gst::prelude::*;

mod imp;

/// Which decoder reads the model's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstVeilInferDecoder")]
pub enum Decoder {
    #[default]
    #[enum_value(name = "CenterFace: faces with 5 landmarks", nick = "centerface")]
    CenterFace = 0,
    #[enum_value(
        name = "NanoDet: GFL head score maps and box distributions",
        nick = "nanodet"
    )]
    NanoDet = 1,
    #[enum_value(name = "SSD-style boxes/scores/classes outputs", nick = "ssd")]
    Ssd = 2,
    #[enum_value(
        name = "Classifier: class scores (softmax) for the whole frame, as a frame-sized region",
        nick = "classifier"
    )]
    Classifier = 3,
}

/// How the picture is turned before the model sees it (`videoflip`'s `video-direction` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstVeilInferDirection")]
pub enum Direction {
    #[default]
    #[enum_value(name = "As it is", nick = "identity")]
    Identity = 0,
    #[enum_value(
        name = "Turned 90° clockwise (a camera mounted turned 90° counter-clockwise)",
        nick = "90r"
    )]
    Clockwise = 1,
    #[enum_value(name = "Turned 180° (a camera mounted upside down)", nick = "180")]
    Half = 2,
    #[enum_value(
        name = "Turned 90° counter-clockwise (a camera mounted turned 90° clockwise)",
        nick = "90l"
    )]
    CounterClockwise = 3,
}

glib::wrapper! {
    pub struct InferFilter(ObjectSubclass<imp::InferFilter>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Decoder::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Direction::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "inferfilter",
        gst::Rank::NONE,
        InferFilter::static_type(),
    )
}
