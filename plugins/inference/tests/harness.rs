// SPDX-License-Identifier: MIT OR Apache-2.0
//! `inferfilter` under `gst_check::Harness`: status metas, intervals and every error case.

use gst::prelude::*;
use veil_meta::{InferenceStatus, StatusMeta};
use veil_tools::assets;

fn init() {
    let _ = gst::init();
    gstveilinference::plugin_register_static().expect("register the plugin");
}

fn filter(props: &[(&str, &str)]) -> gst::Element {
    init();
    let mut b = gst::ElementFactory::make("inferfilter");
    for (k, v) in props {
        b = b.property_from_str(k, v);
    }
    b.build().expect("inferfilter")
}

fn centerface() -> String {
    assets::require("models/centerface.onnx")
        .display()
        .to_string()
}

/// Starts `element` and returns the error it posts, if any.
fn start_error(element: &gst::Element) -> Option<glib::Error> {
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let result = element.set_state(gst::State::Paused);
    let error = bus.iter().find_map(|m| match m.view() {
        gst::MessageView::Error(e) => Some(e.error()),
        _ => None,
    });
    let _ = element.set_state(gst::State::Null);
    assert_eq!(
        result.is_err(),
        error.is_some(),
        "a failed state change must come with an error"
    );
    error
}

use gst::glib;

#[test]
fn missing_model_fails_at_state_change_naming_the_file() {
    let e = start_error(&filter(&[("model", "/nonexistent/face.onnx")])).expect("error");
    assert!(e.matches(gst::ResourceError::OpenRead), "{e}");
    assert!(e.message().contains("/nonexistent/face.onnx"), "{e}");
}

#[test]
fn no_model_set_fails_clearly() {
    let e = start_error(&filter(&[])).expect("error");
    assert!(e.message().contains("'model'"), "{e}");
}

#[test]
fn a_file_that_is_not_onnx_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("veil-notonnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("garbage.onnx");
    std::fs::write(&path, b"this is not a model").unwrap();
    let e = start_error(&filter(&[("model", path.to_str().unwrap())])).expect("error");
    assert!(e.matches(gst::LibraryError::Init), "{e}");
    assert!(
        e.message().contains("garbage.onnx") && e.message().contains("not usable"),
        "{e}"
    );
}

#[test]
fn a_model_that_does_not_fit_the_decoder_fails_naming_the_decoder() {
    let e =
        start_error(&filter(&[("model", &centerface()), ("decoder", "nanodet")])).expect("error");
    assert!(e.matches(gst::LibraryError::Settings), "{e}");
    assert!(e.message().contains("nanodet decoder"), "{e}");
    let nanodet = assets::require("models/nanodet-m.onnx")
        .display()
        .to_string();
    let e = start_error(&filter(&[("model", &nanodet), ("decoder", "centerface")])).expect("error");
    assert!(e.message().contains("centerface decoder"), "{e}");
}

#[test]
fn bad_settings_fail_naming_the_setting() {
    for (props, needle) in [
        (vec![("inference-size", "big")], "inference-size"),
        (
            vec![("keep-labels", "person")],
            "keep-labels names 'person'",
        ),
        (vec![("mean", "1,2")], "mean"),
        (
            vec![("labels-file", "/nonexistent/labels.txt")],
            "labels-file",
        ),
    ] {
        let mut all = vec![("model", centerface())];
        all.extend(props.into_iter().map(|(k, v)| (k, v.to_owned())));
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let e = start_error(&filter(&refs)).expect("error");
        assert!(e.message().contains(needle), "expected '{needle}' in: {e}");
    }
    let nanodet = assets::require("models/nanodet-m.onnx")
        .display()
        .to_string();
    let e = start_error(&filter(&[
        ("model", &nanodet),
        ("decoder", "nanodet"),
        ("inference-size", "640x640"),
    ]))
    .expect("error");
    assert!(e.message().contains("fixed at 416x416"), "{e}");
}

#[test]
fn an_unsupported_format_is_refused_with_a_clear_error() {
    let element = filter(&[("model", &centerface())]);
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=YUY2,width=64,height=64,framerate=10/1");
    let flow = h.push(gst::Buffer::with_size(64 * 64 * 2).unwrap());
    assert_eq!(flow, Err(gst::FlowError::NotNegotiated));
    let error = bus
        .iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error()),
            _ => None,
        })
        .expect("an element error");
    assert!(error.message().contains("YUY2"), "{error}");
    assert_eq!(h.buffers_in_queue(), 0, "nothing passes unanalysed");
}

fn grey_frame(width: u32, height: u32) -> gst::Buffer {
    gst::Buffer::from_mut_slice(vec![128u8; (width * height * 3) as usize])
}

#[test]
fn every_frame_carries_a_status_also_when_nothing_was_found() {
    let element = filter(&[("model", &centerface()), ("inference-interval", "3")]);
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=320,height=240,framerate=10/1");
    let mut seen = Vec::new();
    for _ in 0..7 {
        h.push(grey_frame(320, 240)).unwrap();
        let out = h.pull().unwrap();
        let statuses = StatusMeta::all(&out);
        assert_eq!(statuses.len(), 1);
        assert_eq!(
            out.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
                .count(),
            0
        );
        seen.push((statuses[0].status, statuses[0].age));
    }
    use InferenceStatus::*;
    assert_eq!(
        seen,
        vec![
            (Ran, 0),
            (Skipped, 1),
            (Skipped, 2),
            (Ran, 0),
            (Skipped, 1),
            (Skipped, 2),
            (Ran, 0)
        ]
    );
}

#[test]
fn pixels_pass_through_untouched() {
    let element = filter(&[("model", &centerface())]);
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=10/1");
    let data: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
    h.push(gst::Buffer::from_slice(data.clone())).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(out.map_readable().unwrap().as_slice(), &data[..]);
}

/// `inferfilter` with the purpose-built darkblob classifier (labels ok,ng), plus `extra`.
fn darkblob(extra: &[(&str, &str)]) -> gst::Element {
    let model = assets::require("models/darkblob.onnx")
        .display()
        .to_string();
    let mut props = vec![
        ("model", model.as_str()),
        ("decoder", "classifier"),
        ("labels", "ok,ng"),
        ("inference-size", "64x64"),
    ];
    props.extend_from_slice(extra);
    filter(&props)
}

fn part(bad: bool, shift: usize) -> gst::Buffer {
    gst::Buffer::from_mut_slice(veil_tools::synth::inspection_part(128, 128, bad, shift))
}

#[test]
fn the_classifier_decoder_labels_whole_frames_ok_or_ng() {
    let element = darkblob(&[]);
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=RGB,width=128,height=128,framerate=10/1");
    let expected = [false, true, false, false, true, true, false, true];
    let mut got = Vec::new();
    for (i, &bad) in expected.iter().enumerate() {
        let mut buf = part(bad, i * 3);
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
        h.push(buf).unwrap();
        let out = h.pull().unwrap();
        let found = veil_meta::Detection::all(&out, 128, 128);
        assert_eq!(found.len(), 1, "one classification per frame");
        let d = &found[0];
        assert!(d.confidence > 0.9, "{d:?}");
        assert_eq!(
            (d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max),
            (0.0, 0.0, 1.0, 1.0),
            "the whole frame"
        );
        got.push(d.label.clone());
    }
    let want: Vec<&str> = expected
        .iter()
        .map(|&b| if b { "ng" } else { "ok" })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_classifier_without_class_names_is_refused() {
    let e = start_error(&filter(&[
        (
            "model",
            &assets::require("models/darkblob.onnx")
                .display()
                .to_string(),
        ),
        ("decoder", "classifier"),
    ]))
    .expect("error");
    assert!(e.message().contains("labels"), "{e}");
}

/// Two 128×128 parts side by side in a 256×128 frame: `(left bad, right bad)`.
fn two_parts(left: bool, right: bool) -> gst::Buffer {
    let (l, r) = (
        veil_tools::synth::inspection_part(128, 128, left, 0),
        veil_tools::synth::inspection_part(128, 128, right, 4),
    );
    let mut data = Vec::with_capacity(256 * 128 * 3);
    for y in 0..128 {
        data.extend_from_slice(&l[y * 384..(y + 1) * 384]);
        data.extend_from_slice(&r[y * 384..(y + 1) * 384]);
    }
    gst::Buffer::from_mut_slice(data)
}

#[test]
fn a_second_stage_classifies_each_region_of_its_label() {
    use veil_meta::{Detection, NormalizedBox};
    let element = darkblob(&[("roi-label", "part"), ("attribute", "quality")]);
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=RGB,width=256,height=128,framerate=10/1");
    for (left, right) in [(false, true), (true, false), (false, false)] {
        let mut buf = two_parts(left, right);
        {
            let b = buf.get_mut().unwrap();
            for (label, x) in [("part", 0.0), ("part", 0.5), ("person", 0.25)] {
                Detection {
                    label: label.into(),
                    label_id: 0,
                    confidence: 0.9,
                    bbox: NormalizedBox {
                        x_min: x,
                        y_min: 0.0,
                        x_max: x + 0.5,
                        y_max: 1.0,
                    },
                    landmarks: None,
                    object_id: None,
                }
                .attach(b, 256, 128);
            }
        }
        h.push(buf).unwrap();
        let out = h.pull().unwrap();
        let classes: Vec<Option<String>> = out
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .map(|roi| {
                roi.param("quality")
                    .map(|p| p.get::<String>("label").unwrap())
            })
            .collect();
        let class = |bad: bool| Some(if bad { "ng" } else { "ok" }.to_owned());
        assert_eq!(
            classes,
            vec![class(left), class(right), None],
            "({left}, {right})"
        );
    }
    // Only with the classifier decoder.
    let e =
        start_error(&filter(&[("model", &centerface()), ("roi-label", "part")])).expect("error");
    assert!(e.message().contains("decoder=classifier"), "{e}");
}

/// A 1280×720 frame of the face evaluation's `tune` split with small faces (20–40 px wide),
/// and their ground-truth boxes.
fn small_faces_frame() -> (gst::Buffer, Vec<[f64; 4]>) {
    use veil_tools::faceval::{conditions, run, scene::Renderer, sources::Split};
    let seed = conditions::seed(Split::Tune, "size-20-40", 7);
    let spec = conditions::draw("size-20-40", Split::Tune, seed, 1);
    let mut renderer = Renderer::new(spec, run::load_photo).expect("photos (scripts/setup.sh)");
    let frame = renderer.frame(0).expect("render");
    let boxes = frame.faces.iter().map(|f| f.bbox).collect();
    (gst::Buffer::from_mut_slice(frame.rgb.data), boxes)
}

fn found_faces(props: &[(&str, &str)], frame: &gst::Buffer, truth: &[[f64; 4]]) -> usize {
    let mut all = vec![("model", centerface())];
    all.extend(props.iter().map(|(k, v)| (*k, v.to_string())));
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let element = filter(&refs);
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=1280,height=720,framerate=15/1");
    h.push(frame.clone()).unwrap();
    let out = h.pull().unwrap();
    let dets = veil_meta::Detection::all(&out, 1280, 720);
    truth
        .iter()
        .filter(|t| {
            dets.iter().any(|d| {
                let b = [
                    d.bbox.x_min * 1280.0,
                    d.bbox.y_min * 720.0,
                    d.bbox.x_max * 1280.0,
                    d.bbox.y_max * 720.0,
                ];
                veil_meta::roi::iou(&b, t) >= 0.3
            })
        })
        .count()
}

#[test]
fn min_face_size_finds_small_faces_the_whole_frame_pass_misses() {
    let (frame, truth) = small_faces_frame();
    assert!(truth.len() >= 4);
    // The whole frame at 640x384: faces of 10-20 px at the model's input, mostly missed.
    let coarse = found_faces(&[("inference-size", "640x384")], &frame, &truth);
    // Tiles at full resolution: every face found, each once.
    let tiled = found_faces(&[("min-face-size", "20")], &frame, &truth);
    assert!(
        coarse < truth.len(),
        "control: the coarse pass should miss some ({coarse})"
    );
    assert_eq!(tiled, truth.len(), "coarse {coarse}");
}

#[test]
fn tiles_never_report_one_face_twice() {
    let (frame, truth) = small_faces_frame();
    let element = filter(&[
        ("model", &centerface()),
        ("min-face-size", "20"),
        ("tile-size", "320x320"),
    ]);
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=1280,height=720,framerate=15/1");
    h.push(frame).unwrap();
    let out = h.pull().unwrap();
    let dets = veil_meta::Detection::all(&out, 1280, 720);
    // Small 320×320 tiles cut many faces at their borders; each face is still reported once.
    for t in &truth {
        let hits = dets
            .iter()
            .filter(|d| {
                let (cx, cy) = (
                    (d.bbox.x_min + d.bbox.x_max) * 640.0,
                    (d.bbox.y_min + d.bbox.y_max) * 360.0,
                );
                cx >= t[0] && cx <= t[2] && cy >= t[1] && cy <= t[3]
            })
            .count();
        assert_eq!(hits, 1, "face {t:?}: {dets:?}");
    }
}
