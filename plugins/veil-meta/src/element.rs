//! Small helpers the Veil elements share.

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
