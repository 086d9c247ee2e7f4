// SPDX-License-Identifier: MIT OR Apache-2.0
//! The anonymizer's guarantee, tested with the real detector: masked faces are not found again
//! by CenterFace, pixels outside the masks are untouched, blinks stay masked, and frames nobody
//! analysed never pass.

mod common;

use common::*;
use gst::prelude::*;
use gst_video::prelude::*;
use gstveilanonymizer::region::{Region, scale_box};
use veil_meta::InferenceStatus;
use veil_tools::assets;
use veil_tools::frames::run_pipeline_samples;

// GRAY8: infrared and night cameras.
const FORMATS: [&str; 7] = ["I420", "NV12", "RGB", "RGBA", "BGRx", "BGRA", "GRAY8"];

fn astronaut_through(chain: &str, format: &str) -> (Vec<u8>, u32, u32) {
    let samples = run_pipeline_samples(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format={format} ! {chain} ! videoconvert ! video/x-raw,format=RGB",
        assets::require("media/astronaut.png").display()
    ))
    .unwrap();
    rgb_bytes(&samples[0])
}

#[test]
fn masked_faces_are_not_found_again_in_any_mode_or_format() {
    init();
    let detect = format!(
        "inferfilter model={} inference-size=512x512",
        assets::require("models/centerface.onnx").display()
    );
    // Positive control: without the anonymizer the face is found.
    let (rgb, w, h) = astronaut_through(&detect, "RGB");
    assert_eq!(
        faces_in(&rgb, w, h).len(),
        1,
        "control: the detector sees the face"
    );
    for mode in ["blur", "pixelate", "solid"] {
        for format in FORMATS {
            let (rgb, w, h) =
                astronaut_through(&format!("{detect} ! anonymizer mode={mode}"), format);
            let found = faces_in(&rgb, w, h);
            assert!(
                found.is_empty(),
                "{mode} on {format}: CenterFace still finds {found:?}"
            );
        }
    }
}

/// A textured frame of `format`, and one face analysed upstream.
fn textured(format: &str, w: u32, h: u32) -> (gst_video::VideoInfo, gst::Buffer) {
    let info = gst_video::VideoInfo::builder(format.parse().unwrap(), w, h)
        .fps(gst::Fraction::new(10, 1))
        .build()
        .unwrap();
    let data: Vec<u8> = (0..info.size())
        .map(|i| ((i * 2654435761usize) >> 13) as u8)
        .collect();
    (info, gst::Buffer::from_slice(data))
}

#[test]
fn pixels_outside_the_chroma_snapped_masks_are_byte_identical() {
    init();
    let (w, h) = (320u32, 240u32);
    let face = [0.301, 0.303, 0.499, 0.611];
    for format in FORMATS {
        for (mode, shape) in [
            ("blur", "box"),
            ("pixelate", "box"),
            ("solid", "box"),
            ("blur", "ellipse"),
        ] {
            let (info, input) = textured(format, w, h);
            let mut h_ = anonymizer(&[("mode", mode), ("shape", shape)]);
            h_.play();
            h_.set_src_caps(info.to_caps().unwrap());
            let mut buf = input.copy();
            add_face_analysis(buf.get_mut().unwrap(), w, h, InferenceStatus::Ran, &[face]);
            h_.push(buf).unwrap();
            let out = h_.pull().unwrap();
            let grid = if format == "I420" || format == "NV12" {
                2
            } else {
                1
            };
            let b = scale_box(face, 1.3);
            let (fw, fh) = (w as f64, h as f64);
            let region = Region::rect([b[0] * fw, b[1] * fh, b[2] * fw, b[3] * fh], w, h, grid);
            let fin =
                gst_video::VideoFrameRef::from_buffer_ref_readable(input.as_ref(), &info).unwrap();
            let fout =
                gst_video::VideoFrameRef::from_buffer_ref_readable(out.as_ref(), &info).unwrap();
            let mut changed = 0usize;
            for plane in 0..info.n_planes() {
                let sub = if plane > 0 && grid == 2 { 2 } else { 1 };
                let bpp = match (format, plane) {
                    ("NV12", 1) => 2,
                    ("I420", _) | ("NV12", _) | ("GRAY8", _) => 1,
                    ("RGB", _) => 3,
                    _ => 4,
                };
                let stride = fin.plane_stride()[plane as usize] as usize;
                let (a, bb) = (
                    fin.plane_data(plane).unwrap(),
                    fout.plane_data(plane).unwrap(),
                );
                for y in 0..h.div_ceil(sub) {
                    for x in 0..w.div_ceil(sub) {
                        let i = y as usize * stride + x as usize * bpp;
                        let inside = (x * sub..(x + 1) * sub)
                            .any(|fx| (y * sub..(y + 1) * sub).any(|fy| region.contains(fx, fy)));
                        if !inside {
                            assert_eq!(
                                a[i..i + bpp],
                                bb[i..i + bpp],
                                "{format}/{mode}/{shape}: plane {plane} ({x},{y}) changed"
                            );
                        } else if a[i..i + bpp] != bb[i..i + bpp] {
                            changed += 1;
                        }
                    }
                }
            }
            assert!(
                changed > 1000,
                "{format}/{mode}/{shape}: only {changed} masked samples changed"
            );
        }
    }
}

#[test]
fn a_held_mask_covers_the_face_while_the_detector_blinks() {
    init();
    let (rgb, w, h, face) = astronaut_rgb();
    let mut harness = anonymizer(&[("hold-frames", "2")]);
    harness.play();
    harness.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={h},framerate=10/1"
    ));
    // Frame 0 has the detection; frames 1–4: the detector ran and reported nothing.
    let mut found = Vec::new();
    for i in 0..5 {
        let mut buf = gst::Buffer::from_slice(rgb.clone());
        let faces: &[[f64; 4]] = if i == 0 { &[face] } else { &[] };
        add_face_analysis(buf.get_mut().unwrap(), w, h, InferenceStatus::Ran, faces);
        harness.push(buf).unwrap();
        let out = harness.pull().unwrap();
        let map = out.map_readable().unwrap();
        found.push(faces_in(map.as_slice(), w, h).len());
    }
    // Held through two blind frames, then released (and the face is visible: the control).
    assert_eq!(found, vec![0, 0, 0, 1, 1], "faces found per frame");
}

/// The astronaut as RGB, and its face box (normalized).
fn astronaut_rgb() -> (Vec<u8>, u32, u32, [f64; 4]) {
    let samples = run_pipeline_samples(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB",
        assets::require("media/astronaut.png").display()
    ))
    .unwrap();
    let (rgb, w, h) = rgb_bytes(&samples[0]);
    let face = [181.5 / 512.0, 58.2 / 512.0, 269.9 / 512.0, 177.8 / 512.0];
    (rgb, w, h, face)
}

#[test]
fn a_frame_the_decoder_marked_corrupted_is_blacked_out_even_with_fresh_analysis() {
    init();
    let (rgb, w, h, face) = astronaut_rgb();
    let mut harness = anonymizer(&[]);
    harness.play();
    harness.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={h},framerate=10/1"
    ));
    for corrupted in [false, true] {
        let mut buf = gst::Buffer::from_slice(rgb.clone());
        let b = buf.get_mut().unwrap();
        add_face_analysis(b, w, h, InferenceStatus::Ran, &[face]);
        if corrupted {
            b.set_flags(gst::BufferFlags::CORRUPTED);
        }
        harness.push(buf).unwrap();
        let out = harness.pull().unwrap();
        let map = out.map_readable().unwrap();
        let black = map.iter().all(|&v| v == 0);
        // The control: the same frame unflagged is masked, not blacked out.
        assert_eq!(black, corrupted, "corrupted={corrupted}");
    }
    let a = harness.element().unwrap();
    assert_eq!(a.property::<u64>("frames-corrupted"), 1);
}

#[test]
fn hold_time_follows_the_timestamps_not_the_frame_count() {
    init();
    let (rgb, w, h, face) = astronaut_rgb();
    // 60 fps, 100 ms hold: the face (seen on frame 0 only) stays masked for 6 frames, and is
    // found again on the 7th (16.7 ms apart: 100 ms covers frames 1..=6).
    let mut harness = anonymizer(&[("hold-time", "100"), ("hold-frames", "1")]);
    harness.play();
    harness.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={h},framerate=60/1"
    ));
    let mut found = Vec::new();
    for i in 0..8u64 {
        let mut buf = gst::Buffer::from_slice(rgb.clone());
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(i * 1_000_000_000 / 60));
        let faces: &[[f64; 4]] = if i == 0 { &[face] } else { &[] };
        add_face_analysis(b, w, h, InferenceStatus::Ran, faces);
        harness.push(buf).unwrap();
        let out = harness.pull().unwrap();
        let map = out.map_readable().unwrap();
        found.push(faces_in(map.as_slice(), w, h).len());
    }
    assert_eq!(found, vec![0, 0, 0, 0, 0, 0, 0, 1], "faces found per frame");
}

fn y_plane_all(sample: &gst::Sample, value: u8) -> bool {
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().unwrap(), &info)
        .unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let y = frame.plane_data(0).unwrap();
    (0..info.height() as usize).all(|r| {
        y[r * stride..r * stride + info.width() as usize]
            .iter()
            .all(|&v| v == value)
    })
}

#[test]
fn without_an_inferfilter_every_frame_is_blacked_out_unless_opted_in() {
    init();
    let src =
        "videotestsrc num-buffers=5 pattern=smpte ! video/x-raw,format=I420,width=320,height=240";
    let closed = run_pipeline_samples(&format!("{src} ! anonymizer")).unwrap();
    assert_eq!(closed.len(), 5);
    assert!(
        closed.iter().all(|s| y_plane_all(s, 16)),
        "fail closed: black frames only"
    );
    let open = run_pipeline_samples(&format!("{src} ! anonymizer allow-unanalyzed=true")).unwrap();
    let reference = run_pipeline_samples(src).unwrap();
    for (a, b) in open.iter().zip(&reference) {
        let (a, b) = (
            a.buffer().unwrap().map_readable().unwrap(),
            b.buffer().unwrap().map_readable().unwrap(),
        );
        assert_eq!(
            a.as_slice(),
            b.as_slice(),
            "opted in: frames pass unchanged"
        );
    }
}

#[test]
fn skipped_inference_is_held_then_blacked_out_and_counted() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=10 ! video/x-raw,format=I420,width=320,height=240 ! \
         inferfilter model={} inference-interval=10 ! anonymizer name=a stale-frames=2 stats-interval=0 ! fakesink",
        assets::require("models/centerface.onnx").display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut stats = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(e)
                if e.structure()
                    .is_some_and(|s| s.name() == "veil-anonymizer-stats") =>
            {
                stats = e.structure().map(|s| s.to_owned());
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    let a = pipeline.by_name("a").unwrap();
    let get = |name: &str| a.property::<u64>(name);
    assert_eq!(get("frames-processed"), 10);
    assert_eq!(get("frames-held"), 2, "frames 1 and 2 use held masks");
    assert_eq!(
        get("frames-blacked-out"),
        7,
        "frames 3 to 9 have no fresh analysis"
    );
    let stats = stats.expect("a stats message at EOS");
    assert_eq!(stats.get::<u64>("frames-blacked-out").unwrap(), 7);
    pipeline.set_state(gst::State::Null).unwrap();
}
