// SPDX-License-Identifier: MIT OR Apache-2.0
//! `inferfilter` with the real models through ONNX Runtime, in real pipelines.

use veil_meta::roi::iou;
use veil_tools::assets;
use veil_tools::frames::{FrameRecord, run_pipeline};

fn init() {
    let _ = gst::init();
    gstveilinference::plugin_register_static().expect("register the plugin");
}

fn run(description: &str) -> Vec<FrameRecord> {
    init();
    run_pipeline(description, |_| {})
        .unwrap_or_else(|e| panic!("pipeline failed: {e}\n{description}"))
}

fn px(rec: &FrameRecord, i: usize) -> [f64; 4] {
    let b = rec.detections[i].bbox;
    let (w, h) = (rec.width as f64, rec.height as f64);
    [b.x_min * w, b.y_min * h, b.x_max * w, b.y_max * h]
}

/// ONNX Runtime's Python API on the same image and model gives this box (docs/models.md).
const ASTRONAUT_FACE: [f64; 4] = [181.5, 58.2, 269.9, 177.8];

#[test]
fn centerface_finds_the_astronauts_face_with_landmarks() {
    let frames = run(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! inferfilter model={} inference-size=512x512 threshold=0.5",
        assets::require("media/astronaut.png").display(),
        assets::require("models/centerface.onnx").display()
    ));
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(
        f.detections.len(),
        1,
        "exactly one face: {:?}",
        f.detections
    );
    let b = px(f, 0);
    for (got, want) in b.iter().zip(ASTRONAUT_FACE) {
        assert!(
            (got - want).abs() <= 8.0,
            "box {b:?} is not within 8 px of {ASTRONAUT_FACE:?}"
        );
    }
    let d = &f.detections[0];
    assert_eq!(d.label, "face");
    assert!(
        (d.confidence - 0.929).abs() < 0.02,
        "confidence {}",
        d.confidence
    );
    let lm = d.landmarks.as_ref().expect("landmarks");
    assert_eq!(lm.points.len(), 5);
    // Both eyes above the nose, nose above the mouth corners, all inside the box.
    let y = |i: usize| lm.points[i].1 * 512.0;
    assert!(y(0) < y(2) && y(1) < y(2) && y(2) < y(3) && y(2) < y(4));
    for &(x, yy) in &lm.points {
        assert!(x * 512.0 > b[0] && x * 512.0 < b[2] && yy * 512.0 > b[1] && yy * 512.0 < b[3]);
    }
    assert_eq!(f.statuses.len(), 1);
    assert_eq!(f.statuses[0].status, veil_meta::InferenceStatus::Ran);
    assert_eq!(f.statuses[0].model, "centerface.onnx");
}

#[test]
fn every_input_format_gives_the_same_face() {
    for format in ["RGB", "RGBA", "BGRx", "BGRA", "I420", "NV12"] {
        let frames = run(&format!(
            "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format={format} ! inferfilter model={} inference-size=512x512",
            assets::require("media/astronaut.png").display(),
            assets::require("models/centerface.onnx").display()
        ));
        let f = &frames[0];
        assert_eq!(f.detections.len(), 1, "{format}: {:?}", f.detections);
        let b = px(f, 0);
        for (got, want) in b.iter().zip(ASTRONAUT_FACE) {
            assert!((got - want).abs() <= 8.0, "{format}: box {b:?}");
        }
    }
}

/// Frame 30 of vtest.avi, labelled by hand from the decoded frame (x0, y0, x1, y1 in pixels):
/// three people in a group by the lamp post (one mostly hidden behind the others) and two
/// walking on the right.
const VTEST_FRAME_30_PERSONS: [[f64; 4]; 5] = [
    [377.0, 178.0, 410.0, 263.0],
    [402.0, 214.0, 436.0, 297.0],
    [388.0, 180.0, 412.0, 240.0],
    [627.0, 250.0, 668.0, 353.0],
    [664.0, 250.0, 700.0, 347.0],
];

#[test]
fn nanodet_finds_the_people_on_vtest_frame_30() {
    let frames = run(&format!(
        // Stop well after frame 30: draining the MPEG-4 decoder at EOS garbles the last frames.
        "filesrc location={} ! decodebin ! videoconvert ! identity eos-after=40 ! \
         inferfilter decoder=nanodet model={} keep-labels=person threshold=0.45",
        assets::require("media/vtest.avi").display(),
        assets::require("models/nanodet-m.onnx").display()
    ));
    let f = &frames[30];
    let boxes: Vec<[f64; 4]> = (0..f.detections.len()).map(|i| px(f, i)).collect();
    assert!(
        f.detections.iter().all(|d| d.label == "person"),
        "keep-labels must filter"
    );
    let found = VTEST_FRAME_30_PERSONS
        .iter()
        .filter(|gt| boxes.iter().any(|b| iou(b, gt) >= 0.4))
        .count();
    assert!(
        found >= 4,
        "found {found} of the 5 labelled people: {boxes:?}"
    );
    for b in &boxes {
        assert!(
            VTEST_FRAME_30_PERSONS.iter().any(|gt| iou(b, gt) >= 0.3),
            "person box {b:?} matches nobody"
        );
    }
}

#[test]
fn chained_nanodet_and_centerface_find_person_and_face_on_messi() {
    let frames = run(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! \
         inferfilter name=persons decoder=nanodet model={} keep-labels=person ! \
         inferfilter name=faces model={} threshold=0.5",
        assets::require("media/messi5.jpg").display(),
        assets::require("models/nanodet-m.onnx").display(),
        assets::require("models/centerface.onnx").display()
    ));
    let f = &frames[0];
    let persons: Vec<_> = f
        .detections
        .iter()
        .filter(|d| d.label == "person")
        .collect();
    let faces: Vec<_> = f.detections.iter().filter(|d| d.label == "face").collect();
    assert_eq!(persons.len(), 1, "{:?}", f.detections);
    assert_eq!(faces.len(), 1, "{:?}", f.detections);
    // The face (docs/models.md: (225.5, 92.8)–(257.1, 135.0)) lies inside the person.
    let (fb, pb) = (faces[0].bbox, persons[0].bbox);
    assert!(
        (fb.x_min * 548.0 - 225.5).abs() < 8.0 && (fb.y_max * 342.0 - 135.0).abs() < 8.0,
        "{fb:?}"
    );
    assert!(fb.x_min >= pb.x_min && fb.x_max <= pb.x_max && fb.y_min >= pb.y_min);
    assert!(faces[0].landmarks.is_some() && persons[0].landmarks.is_none());
    // Each instance leaves its own status, in pipeline order.
    let names: Vec<(&str, &str)> = f
        .statuses
        .iter()
        .map(|s| (s.element.as_str(), s.model.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("persons", "nanodet-m.onnx"), ("faces", "centerface.onnx")]
    );
    assert_eq!(f.statuses[0].labels, vec!["person"]);
    assert_eq!(f.statuses[1].labels, vec!["face"]);
}

/// A camera mounted sideways: the astronaut turned 90° counter-clockwise (videoflip 90l, so the
/// face lies on its side), with a non-square crop so width and height differ. With
/// `video-direction=90r` the model sees it upright, and the face is reported where it is in
/// the sideways frame — in every format the element reads.
#[test]
fn a_sideways_camera_is_turned_upright_for_the_model_and_boxes_map_back() {
    for format in ["I420", "NV12", "RGB", "BGRx", "GRAY8"] {
        let frames = run(&format!(
            "filesrc location={} ! pngdec ! videoconvert ! videocrop bottom=112 ! \
             videoflip video-direction=90l ! videoconvert ! video/x-raw,format={format} ! \
             inferfilter model={} video-direction=90r threshold=0.5",
            assets::require("media/astronaut.png").display(),
            assets::require("models/centerface.onnx").display()
        ));
        let f = &frames[0];
        // 512×400 turned counter-clockwise is 400×512; the frame's (x, y) is at (y, 512 - x).
        assert_eq!((f.width, f.height), (400, 512), "{format}");
        let [x0, y0, x1, y1] = ASTRONAUT_FACE;
        let expected = [y0, 512.0 - x1, y1, 512.0 - x0];
        assert_eq!(f.detections.len(), 1, "{format}: {:?}", f.detections);
        let found = px(f, 0);
        assert!(
            iou(&found, &expected) > 0.75,
            "{format}: found {found:?}, expected {expected:?}"
        );
        let marks = f.detections[0].landmarks.as_ref().expect("landmarks");
        // The eyes (the first two landmarks) lie on a vertical line in the sideways frame.
        let (le, re) = (marks.points[0], marks.points[1]);
        assert!(
            (le.0 - re.0).abs() * 400.0 < 12.0,
            "{format}: eyes {le:?} {re:?}"
        );
    }
}
