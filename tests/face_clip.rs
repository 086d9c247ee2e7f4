// SPDX-License-Identifier: MIT OR Apache-2.0
//! `filesrc ! decodebin ! videoconvert ! inferfilter ! fakesink` over the synthesized face clip:
//! detections arrive on the frames that have faces, where the faces are, and not on empty frames.

use std::sync::{Arc, Mutex};

use gst::prelude::*;
use veil_meta::roi::iou;
use veil_meta::{Detection, InferenceStatus, StatusMeta};
use veil_tools::assets;

/// What reached the sink for one frame: its inference statuses and detection boxes in pixels.
type SeenFrame = (Vec<StatusMeta>, Vec<[f64; 4]>);

#[test]
fn detections_arrive_on_face_frames_only() {
    veil_e2e::init();
    let clip = assets::require("media/faces-720p.mp4");
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(assets::require("media/faces-720p.json")).unwrap(),
    )
    .unwrap();
    let pipeline = gst::parse::launch(&format!(
        // The analytics threshold: at the masking default (0.2) textures pass for faces too.
        "filesrc location={} ! decodebin ! videoconvert ! inferfilter model={} threshold=0.5 ! fakesink name=sink",
        clip.display(),
        assets::require("models/centerface.onnx").display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let seen: Arc<Mutex<Vec<SeenFrame>>> = Arc::default();
    let sink_pad = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    let caps: Arc<Mutex<Option<gst_video::VideoInfo>>> = Arc::default();
    {
        let (seen, caps) = (seen.clone(), caps.clone());
        sink_pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                match &info.data {
                    Some(gst::PadProbeData::Event(ev)) => {
                        if let gst::EventView::Caps(c) = ev.view() {
                            *caps.lock().unwrap() = gst_video::VideoInfo::from_caps(c.caps()).ok();
                        }
                    }
                    Some(gst::PadProbeData::Buffer(buf)) => {
                        let info = caps.lock().unwrap().clone().expect("caps before buffers");
                        let (w, h) = (info.width() as f64, info.height() as f64);
                        let boxes = Detection::all(buf, info.width(), info.height())
                            .iter()
                            .map(|d| {
                                [
                                    d.bbox.x_min * w,
                                    d.bbox.y_min * h,
                                    d.bbox.x_max * w,
                                    d.bbox.y_max * h,
                                ]
                            })
                            .collect();
                        seen.lock().unwrap().push((StatusMeta::all(buf), boxes));
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("pipeline error: {} ({:?})", e.error(), e.debug()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();

    let seen = seen.lock().unwrap();
    let truth_frames = truth["frames"].as_array().unwrap();
    assert_eq!(seen.len(), truth_frames.len(), "every frame arrives");
    let (mut face_frames, mut matched_faces, mut total_faces) = (0, 0, 0);
    for (i, ((statuses, boxes), t)) in seen.iter().zip(truth_frames).enumerate() {
        assert_eq!(statuses.len(), 1, "frame {i}: one status meta");
        assert_eq!(statuses[0].status, InferenceStatus::Ran, "frame {i}");
        let faces: Vec<[f64; 4]> = t["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let v: Vec<f64> = f
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                [v[0], v[1], v[2], v[3]]
            })
            .collect();
        if faces.is_empty() {
            assert!(boxes.is_empty(), "frame {i} has no face but got {boxes:?}");
            continue;
        }
        face_frames += 1;
        if t["degraded"].is_null() {
            total_faces += faces.len();
            matched_faces += faces
                .iter()
                .filter(|f| boxes.iter().any(|b| iou(b, f) >= 0.5))
                .count();
        }
        for b in boxes {
            assert!(
                faces.iter().any(|f| iou(b, f) >= 0.3),
                "frame {i}: box {b:?} is on no face"
            );
        }
    }
    assert!(
        face_frames >= 80,
        "the clip has {face_frames} frames with faces"
    );
    // Degraded frames (dark, noise, blur) are there to make the detector blink (the anonymizer
    // must cover for it); on clean frames it must not miss.
    assert!(
        matched_faces as f64 >= 0.98 * total_faces as f64,
        "{matched_faces} of {total_faces} face instances detected"
    );
}
