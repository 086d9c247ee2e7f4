// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bad settings fail clearly at start; static privacy masks are always applied.

mod common;

use common::*;
use gst::prelude::*;
use veil_meta::InferenceStatus;

fn start_error(props: &[(&str, &str)]) -> String {
    init();
    let mut b = gst::ElementFactory::make("anonymizer");
    for (k, v) in props {
        b = b.property_from_str(k, v);
    }
    let element = b.build().unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    assert!(
        element.set_state(gst::State::Paused).is_err(),
        "{props:?} must not start"
    );
    let _ = element.set_state(gst::State::Null);
    bus.iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an element error")
}

#[test]
fn negative_block_size_is_refused() {
    let e = start_error(&[("block-size", "-4")]);
    assert!(e.contains("block-size") && e.contains("-4"), "{e}");
}

#[test]
fn malformed_polygons_are_refused_naming_the_problem() {
    let e = start_error(&[("privacy-masks", "0,0 0.5,0")]);
    assert!(
        e.contains("privacy-masks") && e.contains("at least 3"),
        "{e}"
    );
    let e = start_error(&[("privacy-masks", "0,0 0.5,zero 0,1")]);
    assert!(e.contains("'zero'"), "{e}");
    let e = start_error(&[("privacy-masks-file", "/nonexistent/masks.txt")]);
    assert!(e.contains("/nonexistent/masks.txt"), "{e}");
}

#[test]
fn static_privacy_masks_apply_even_with_no_detections() {
    init();
    let mut h = anonymizer(&[
        ("mode", "solid"),
        ("color", "0xffffffff"),
        ("privacy-masks", "0,0 0.5,0 0.5,0.5 0,0.5"),
    ]);
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=64,framerate=10/1");
    let mut buf = gst::Buffer::from_slice(vec![10u8; 64 * 64 * 3]);
    add_face_analysis(buf.get_mut().unwrap(), 64, 64, InferenceStatus::Ran, &[]);
    h.push(buf).unwrap();
    let out = h.pull().unwrap();
    let data = out.map_readable().unwrap();
    let px = |x: usize, y: usize| data[(y * 64 + x) * 3];
    assert_eq!(px(5, 5), 255, "inside the polygon");
    assert_eq!(px(40, 40), 10, "outside");
    assert_eq!(px(40, 5), 10, "outside");
}
