// SPDX-License-Identifier: MIT OR Apache-2.0
//! Helpers shared by the anonymizer tests.
#![allow(dead_code)]

use veil_meta::{Detection, InferenceStatus, NormalizedBox, StatusMeta};
use veil_tools::assets;

pub fn init() {
    let _ = gst::init();
    veil_meta::status::register();
    gstveilinference::plugin_register_static().expect("register veilinference");
    gstveilanonymizer::plugin_register_static().expect("register veilanonymizer");
}

/// Packed RGB bytes (no padding) of a sample.
pub fn rgb_bytes(sample: &gst::Sample) -> (Vec<u8>, u32, u32) {
    veil_tools::frames::packed_rgb(sample).expect("an RGB sample")
}

/// CenterFace (threshold 0.5) on plain RGB pixels, with no metas from earlier elements.
pub fn faces_in(rgb: &[u8], w: u32, h: u32) -> Vec<Detection> {
    let element = gst::ElementFactory::make("inferfilter")
        .property(
            "model",
            assets::require("models/centerface.onnx")
                .display()
                .to_string(),
        )
        // Recognisable = found at 0.5, as the face evaluation's scorer has it (the element's
        // own default, 0.2, is for masking: it also finds the head shape under a blur).
        .property("threshold", 0.5f64)
        .build()
        .unwrap();
    let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    harness.play();
    harness.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={h},framerate=1/1"
    ));
    harness.push(gst::Buffer::from_slice(rgb.to_vec())).unwrap();
    let out = harness.pull().unwrap();
    Detection::all(&out, w, h)
}

/// Adds a `ran` face status and the given face boxes, as an upstream inferfilter would.
pub fn add_face_analysis(
    buf: &mut gst::BufferRef,
    w: u32,
    h: u32,
    status: InferenceStatus,
    faces: &[[f64; 4]],
) {
    StatusMeta {
        status,
        model: "centerface.onnx".into(),
        element: "faces".into(),
        labels: vec!["face".into()],
        age: 0,
    }
    .attach(buf)
    .unwrap();
    for f in faces {
        Detection {
            label: "face".into(),
            label_id: 0,
            confidence: 0.9,
            bbox: NormalizedBox {
                x_min: f[0],
                y_min: f[1],
                x_max: f[2],
                y_max: f[3],
            },
            landmarks: None,
            object_id: None,
        }
        .attach(buf, w, h);
    }
}

/// An anonymizer in a harness with the given properties.
pub fn anonymizer(props: &[(&str, &str)]) -> gst_check::Harness {
    let mut b = gst::ElementFactory::make("anonymizer");
    for (k, v) in props {
        b = b.property_from_str(k, v);
    }
    let element = b.build().unwrap();
    gst_check::Harness::with_element(&element, Some("sink"), Some("src"))
}
