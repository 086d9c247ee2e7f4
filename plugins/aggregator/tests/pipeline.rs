// SPDX-License-Identifier: MIT OR Apache-2.0
//! `aggregator` in real pipelines behind real detectors.

use gst::prelude::*;
use veil_meta::events::{self, Event, MetricsWindow};
use veil_tools::assets;

/// The aggregator's event in a structure, if it is one (its body must read).
fn event_of(s: &gst::StructureRef) -> Option<Event> {
    events::from_structure(s).map(|e| e.expect("a readable event body"))
}

fn window_of(s: &gst::StructureRef) -> Option<MetricsWindow> {
    match event_of(s)? {
        Event::Window(w) => Some(w),
        _ => None,
    }
}

fn init() {
    let _ = gst::init();
    veil_meta::status::register();
    gstveilinference::plugin_register_static().unwrap();
    gstveilaggregator::plugin_register_static().unwrap();
}

/// Runs `description` to EOS; returns the windows posted on the bus and those that reached the
/// sink as custom downstream events.
fn windows(description: &str) -> (Vec<MetricsWindow>, Vec<MetricsWindow>) {
    init();
    let pipeline = gst::parse::launch(&format!("{description} ! fakesink name=sink"))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let downstream = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let downstream = downstream.clone();
        let pad = pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap();
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data
                && let Some(w) = ev.structure().and_then(window_of)
            {
                downstream.lock().unwrap().push(w);
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut posted = Vec::new();
    for msg in pipeline
        .bus()
        .unwrap()
        .iter_timed(gst::ClockTime::from_seconds(300))
    {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(w) = e.structure().and_then(window_of) {
                    posted.push(w);
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let downstream = downstream.lock().unwrap().clone();
    (posted, downstream)
}

#[test]
fn chained_models_on_the_face_clip_give_watchers_and_attention() {
    let (posted, downstream) = windows(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! \
         inferfilter name=persons decoder=nanodet model={} keep-labels=person ! \
         inferfilter name=faces model={} ! \
         aggregator window=2 start-time=2026-11-23T10:00:00Z",
        assets::require("media/faces-720p.mp4").display(),
        assets::require("models/nanodet-m.onnx").display(),
        assets::require("models/centerface.onnx").display()
    ));
    // 8 s of video (last frame at 7.93 s) in 2 s windows, aligned to UTC, the last flushed at EOS.
    assert_eq!(
        posted.len(),
        4,
        "{:#?}",
        posted.iter().map(|w| &w.window_start).collect::<Vec<_>>()
    );
    assert_eq!(posted[0].window_start, "2026-11-23T10:00:00.000000000Z");
    assert_eq!(
        posted, downstream,
        "the same windows travel downstream, in order"
    );
    assert!(posted.last().unwrap().partial);
    // The first second has no faces; the faces are on screen from 1 s to 7 s.
    let ots: u32 = posted.iter().map(|w| w.opportunities_to_see).max().unwrap();
    assert!(ots >= 3, "three people on screen, max OTS per window {ots}");
    let watchers: u32 = posted.iter().map(|w| w.watchers).sum();
    let events: usize = posted.iter().map(|w| w.attention_events.len()).sum();
    assert!(
        watchers >= 1 && events >= 1,
        "watchers {watchers}, attention events {events}"
    );
    // Nothing identifying leaves: the serialized windows hold no ids or boxes.
    let body = serde_json::to_string(&posted).unwrap();
    assert!(!body.contains("object_id") && !body.contains("bbox") && !body.contains("track"));
}

#[test]
fn short_windows_with_demographics_are_refused() {
    init();
    let element = gst::ElementFactory::make("aggregator")
        .property("window", 60u32)
        .property("demographics", true)
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    assert!(element.set_state(gst::State::Paused).is_err());
    let msg = bus
        .iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .unwrap();
    assert!(msg.contains("300"), "{msg}");
    let _ = element.set_state(gst::State::Null);
}

#[test]
fn every_tracked_roi_gets_its_own_stable_object_id() {
    use veil_meta::{Detection, NormalizedBox};
    init();
    let element = gst::ElementFactory::make("aggregator")
        .property("min-hits", 1u32)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=64,framerate=10/1");
    let mut seen = Vec::new();
    for f in 0..5u64 {
        let mut buf = gst::Buffer::with_size(64 * 64 * 3).unwrap();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(100 * f));
            for x in [0.1, 0.6] {
                let x = x + 0.01 * f as f64;
                Detection {
                    label: "person".into(),
                    label_id: 0,
                    confidence: 0.9,
                    bbox: NormalizedBox {
                        x_min: x,
                        y_min: 0.2,
                        x_max: x + 0.2,
                        y_max: 0.8,
                    },
                    landmarks: None,
                    object_id: None,
                }
                .attach(b, 64, 64);
            }
        }
        h.push(buf).unwrap();
        let out = h.pull().unwrap();
        let ids: Vec<Option<i32>> = Detection::all(&out, 64, 64)
            .iter()
            .map(|d| d.object_id)
            .collect();
        seen.push(ids);
    }
    assert!(
        seen.iter().all(|ids| ids == &seen[0]),
        "ids are stable: {seen:?}"
    );
    let (a, b) = (seen[0][0].expect("tracked"), seen[0][1].expect("tracked"));
    assert_ne!(a, b, "two people, two ids");
}

/// Person passages (a person entering the view and leaving it, or present at the first or last
/// frame) in vtest.avi, counted by hand once from slit-scans of the frame borders: every column
/// x=764 and x=3 (rows 150–560), the top-right corner, row 70 across the far road and row 568
/// along the bottom, stacked over the 795 frames, show each border crossing as one figure.
/// Crossings: right edge 22, left edge 6, top 3, top-right corner 1, bottom 0 = 33; people
/// present at frame 0: 3, at frame 794: 8. Passages = (33 + 3 + 8) / 2 = 22 (about ±2: figures
/// that overlap in a slit, walkers on the far path). Opportunities to see count passages, not
/// individuals: nothing re-identifies a person who comes back.
const VTEST_PASSAGES: f64 = 22.0;

#[test]
fn vtest_opportunities_to_see_match_the_hand_count() {
    let zones =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/zones/vtest.toml");
    let (posted, _) = windows(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! \
         inferfilter decoder=nanodet model={} keep-labels=person threshold=0.3 ! \
         aggregator window=3600 start-time=2026-11-23T10:00:00Z zones-file={}",
        assets::require("media/vtest.avi").display(),
        assets::require("models/nanodet-m.onnx").display(),
        zones.display()
    ));
    // The 80 s clip falls in one hour-long window, flushed at EOS.
    assert_eq!(posted.len(), 1);
    let w = &posted[0];
    let ots = w.opportunities_to_see as f64;
    // Within ±20% of the hand count; the upper bound also bounds identity switches, since every
    // switch adds a track.
    assert!(
        (0.8 * VTEST_PASSAGES..=1.2 * VTEST_PASSAGES).contains(&ots),
        "opportunities to see {ots}, hand count {VTEST_PASSAGES}"
    );
    // Zones from configs/zones/vtest.toml: everyone walks on the road, some cross the lawn.
    let (road, lawn) = (&w.zones["road"], &w.zones["lawn"]);
    assert!(
        road.visitors as f64 >= 0.5 * ots && road.visitors <= w.opportunities_to_see,
        "{road:?}"
    );
    assert!(
        lawn.visitors >= 1 && lawn.visitors < road.visitors,
        "{lawn:?}"
    );
    assert!(
        road.occupancy_max >= 5,
        "five or more people on the road at once: {road:?}"
    );
    let dwellers: u32 = w.dwell_bands.values().sum();
    assert_eq!(
        dwellers, w.opportunities_to_see,
        "every track ends by EOS and has a dwell band"
    );
}

#[test]
fn classifier_attributes_become_suppressed_zone_breakdowns() {
    use veil_meta::{Detection, NormalizedBox};
    init();
    let dir = std::env::temp_dir().join(format!("veil-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zones = dir.join("zones.toml");
    std::fs::write(
        &zones,
        "[[zone]]\nname = 'all'\npolygon = [[0,0],[1,0],[1,1],[0,1]]\n",
    )
    .unwrap();
    let element = gst::ElementFactory::make("aggregator")
        .property("window", 300u32)
        .property("demographics", true)
        .property("min-hits", 1u32)
        .property("start-time", "2026-11-23T10:00:00Z")
        .property("zones-file", zones.to_str().unwrap())
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=640,height=480,framerate=10/1");
    for f in 0..3u64 {
        let mut buf = gst::Buffer::with_size(640 * 480 * 3).unwrap();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(100 * f));
            // Nine people in a row: six classified female, three male.
            for i in 0..9 {
                let x = 0.02 + 0.105 * i as f64;
                Detection {
                    label: "person".into(),
                    label_id: 0,
                    confidence: 0.9,
                    bbox: NormalizedBox {
                        x_min: x,
                        y_min: 0.2,
                        x_max: x + 0.08,
                        y_max: 0.8,
                    },
                    landmarks: None,
                    object_id: None,
                }
                .attach(b, 640, 480);
            }
            for (i, mut roi) in b
                .iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>()
                .enumerate()
            {
                let gender = if i < 6 { "female" } else { "male" };
                roi.add_param(
                    gst::Structure::builder("gender")
                        .field("label", gender)
                        .field("confidence", 0.9)
                        .build(),
                );
            }
        }
        h.push(buf).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let window = bus
        .iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Element(e) => e.structure().and_then(window_of),
            _ => None,
        })
        .expect("a window at EOS");
    assert_eq!(window.opportunities_to_see, 9);
    let cells = &window.demographics["all"]["gender"];
    assert_eq!(cells["male"], None, "3 < k = 5");
    assert_eq!(cells["female"], None, "else 9 - female = male");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Action compliance on scripted zone entries: a hand (one region labelled `hand`) moves through
/// the four step zones (the quadrants) at 10 frames/s, five parts one after the other: a correct
/// cycle, a skipped step, a swapped pair, an extra step, and one that takes too long.
#[test]
fn scripted_cycles_are_each_flagged_exactly() {
    use veil_meta::{Detection, NormalizedBox};
    init();
    let dir = std::env::temp_dir().join(format!("veil-compliance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("station.toml");
    std::fs::write(
        &file,
        r#"
sequence = ["pick", "place", "fasten", "inspect"]
timeout_s = 20
idle_s = 6
step_from = "zone"
object_label = "hand"
[[step_zone]]
step = "pick"
polygon = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]
[[step_zone]]
step = "place"
polygon = [[0.5, 0.0], [1.0, 0.0], [1.0, 0.5], [0.5, 0.5]]
[[step_zone]]
step = "fasten"
polygon = [[0.5, 0.5], [1.0, 0.5], [1.0, 1.0], [0.5, 1.0]]
[[step_zone]]
step = "inspect"
polygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
"#,
    )
    .unwrap();
    let element = gst::ElementFactory::make("aggregator")
        .property("compliance-file", file.to_str().unwrap())
        .property("start-time", "2026-11-23T10:00:00Z")
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=64,framerate=10/1");
    let centre = |step: &str| match step {
        "pick" => (0.25, 0.25),
        "place" => (0.75, 0.25),
        "fasten" => (0.75, 0.75),
        "inspect" => (0.25, 0.75),
        other => panic!("{other}"),
    };
    // (step or none, seconds)
    let mut script: Vec<(Option<&str>, f64)> = Vec::new();
    let part = |script: &mut Vec<(Option<&'static str>, f64)>, steps: &[&'static str], gap: f64| {
        for s in steps {
            script.push((Some(s), 2.0));
            script.push((None, gap));
        }
        script.push((None, 7.0));
    };
    part(&mut script, &["pick", "place", "fasten", "inspect"], 1.0);
    part(&mut script, &["pick", "place", "inspect"], 1.0);
    part(&mut script, &["pick", "fasten", "place", "inspect"], 1.0);
    part(
        &mut script,
        &["pick", "place", "place", "fasten", "inspect"],
        1.0,
    );
    part(&mut script, &["pick", "place", "fasten"], 4.5);
    let mut frame = 0u64;
    for (step, secs) in script {
        for _ in 0..(secs * 10.0).round() as u64 {
            let mut buf = gst::Buffer::with_size(64 * 64 * 3).unwrap();
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(100 * frame));
                if let Some(s) = step {
                    let (x, y) = centre(s);
                    Detection {
                        label: "hand".into(),
                        label_id: 0,
                        confidence: 0.8,
                        bbox: NormalizedBox {
                            x_min: x - 0.05,
                            y_min: y - 0.05,
                            x_max: x + 0.05,
                            y_max: y + 0.05,
                        },
                        landmarks: None,
                        object_id: None,
                    }
                    .attach(b, 64, 64);
                }
            }
            h.push(buf).unwrap();
            frame += 1;
        }
    }
    h.push_event(gst::event::Eos::new());
    let mut cycles = Vec::new();
    let mut steps = 0;
    while let Some(event) = h.try_pull_event() {
        let Some(s) = event.structure() else { continue };
        match event_of(s) {
            Some(Event::Step(_)) => steps += 1,
            Some(Event::Compliance(c)) => cycles.push(serde_json::to_value(c).unwrap()),
            _ => {}
        }
    }
    let statuses: Vec<&str> = cycles
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["in_order", "missing", "out_of_order", "extra", "timeout"],
        "{cycles:#?}"
    );
    assert_eq!(cycles[1]["missing"], serde_json::json!(["fasten"]));
    assert_eq!(
        cycles[2]["out_of_order"],
        serde_json::json!([{"before": "place", "after": "fasten"}])
    );
    assert_eq!(cycles[3]["extra"], serde_json::json!(["place"]));
    assert_eq!(cycles[4]["missing"], serde_json::json!(["inspect"]));
    assert_eq!(cycles[4]["timed_out"], true);
    for c in &cycles[..4] {
        assert_eq!(c["timed_out"], false);
    }
    // The correct cycle: pick at 10:00:00.0 to inspect ending 10:00:10.9.
    assert_eq!(cycles[0]["start"], "2026-11-23T10:00:00.000000000Z");
    assert_eq!(cycles[0]["end"], "2026-11-23T10:00:10.900000000Z");
    assert_eq!(cycles[0]["cycle_time_s"], 10.9);
    assert_eq!(steps, 4 + 3 + 4 + 5 + 3, "one step event per occurrence");
    // Structure only: labels, times and flags.
    let text = serde_json::to_string(&cycles).unwrap();
    assert!(!text.contains("hand") && !text.contains("0.25"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Visual inspection with the purpose-built classifier: alternating good and bad parts give
/// exactly the expected OK/NG sequence, each NG with its rule, and the window's yield.
#[test]
fn alternating_good_and_bad_parts_give_the_expected_decisions() {
    init();
    let dir = std::env::temp_dir().join(format!("veil-inspection-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("inspection.toml");
    std::fs::write(
        &rules,
        "trigger = \"frame\"\n[[rule]]\nname = \"dark-blob\"\nlabel = \"ng\"\nmin_confidence = 0.6\n",
    )
    .unwrap();
    let model = assets::require("models/darkblob.onnx");
    let mut h = gst_check::Harness::new_parse(&format!(
        "inferfilter decoder=classifier model={} labels=ok,ng inference-size=64x64 ! \
         aggregator inspection-file={} start-time=2026-11-23T10:00:00Z",
        model.display(),
        rules.display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGB,width=128,height=128,framerate=10/1");
    let bad = [
        false, true, false, true, true, false, false, true, false, true,
    ];
    for (i, &b) in bad.iter().enumerate() {
        let mut buf =
            gst::Buffer::from_mut_slice(veil_tools::synth::inspection_part(128, 128, b, i * 2));
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
        h.push(buf).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let mut decisions = Vec::new();
    let mut windows = Vec::new();
    while let Some(event) = h.try_pull_event() {
        let Some(s) = event.structure() else { continue };
        match event_of(s) {
            Some(Event::Inspection(i)) => decisions.push(serde_json::to_value(i).unwrap()),
            Some(Event::Window(w)) => windows.push(w),
            _ => {}
        }
    }
    let got: Vec<&str> = decisions
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = bad.iter().map(|&b| if b { "NG" } else { "OK" }).collect();
    assert_eq!(got, want);
    for (i, d) in decisions.iter().enumerate() {
        assert_eq!(d["part"], i as u64 + 1);
        if bad[i] {
            assert_eq!(d["reason"]["rule"], "dark-blob");
            assert!(d["reason"]["confidence"].as_f64().unwrap() >= 0.6);
        } else {
            assert!(d["reason"].is_null());
        }
    }
    let counts = windows.last().unwrap().inspection.clone().unwrap();
    assert_eq!((counts.parts, counts.ok, counts.ng), (10, 5, 5));
    assert_eq!(counts.yield_rate, Some(0.5));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Parts on a conveyor: each part (a region labelled `part`, its pixels good or with a dark
/// blob) enters the inspection zone once; a second-stage classifier labels the part's region,
/// and the aggregator decides each part once, on entry.
#[test]
fn parts_entering_the_zone_are_decided_once_from_their_region_class() {
    use veil_meta::{Detection, NormalizedBox};
    init();
    let dir = std::env::temp_dir().join(format!("veil-conveyor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("conveyor.toml");
    std::fs::write(
        &rules,
        "trigger = \"zone\"\npart_label = \"part\"\nzone = [[0.4, 0.0], [0.6, 0.0], [0.6, 1.0], [0.4, 1.0]]\n\
         [[rule]]\nname = \"dark-blob\"\nlabel = \"ng\"\nmin_confidence = 0.6\n",
    )
    .unwrap();
    let mut h = gst_check::Harness::new_parse(&format!(
        "inferfilter decoder=classifier model={} labels=ok,ng inference-size=64x64 roi-label=part ! \
         aggregator inspection-file={} start-time=2026-11-23T10:00:00Z",
        assets::require("models/darkblob.onnx").display(),
        rules.display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGB,width=256,height=128,framerate=10/1");
    let bad = [false, true, true, false, true];
    let mut frame = 0u64;
    for (n, &b) in bad.iter().enumerate() {
        // The part travels left to right: before the zone, in it (twice), past it.
        // Square parts: darkblob.onnx reads letterbox padding as dark.
        for x in [0usize, 64, 72, 128] {
            let part = veil_tools::synth::inspection_part(128, 128, b, n);
            let mut data = vec![230u8; 256 * 128 * 3];
            for y in 0..128 {
                data[(y * 256 + x) * 3..(y * 256 + x + 128) * 3]
                    .copy_from_slice(&part[y * 384..(y + 1) * 384]);
            }
            let mut buf = gst::Buffer::from_mut_slice(data);
            {
                let bm = buf.get_mut().unwrap();
                bm.set_pts(gst::ClockTime::from_mseconds(100 * frame));
                Detection {
                    label: "part".into(),
                    label_id: 0,
                    confidence: 0.9,
                    bbox: NormalizedBox {
                        x_min: x as f64 / 256.0,
                        y_min: 0.0,
                        x_max: (x + 128) as f64 / 256.0,
                        y_max: 1.0,
                    },
                    landmarks: None,
                    object_id: None,
                }
                .attach(bm, 256, 128);
            }
            h.push(buf).unwrap();
            frame += 1;
        }
    }
    h.push_event(gst::event::Eos::new());
    let mut got = Vec::new();
    while let Some(event) = h.try_pull_event() {
        if let Some(Event::Inspection(i)) = event.structure().and_then(event_of) {
            got.push(i.decision.as_str());
        }
    }
    let want: Vec<&str> = bad.iter().map(|&b| if b { "NG" } else { "OK" }).collect();
    assert_eq!(got, want, "one decision per part, on entry");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Compliance mode is structure only: asking it to keep images is refused at start.
#[test]
fn compliance_refuses_any_image_retention() {
    init();
    let dir = std::env::temp_dir().join(format!("veil-structure-only-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("station.toml");
    std::fs::write(&file, "sequence = [\"a\", \"b\"]\nstep_from = \"label\"\n").unwrap();
    for retention in ["failures", "all"] {
        let element = gst::ElementFactory::make("aggregator")
            .property("compliance-file", file.to_str().unwrap())
            .property_from_str("image-retention", retention)
            .build()
            .unwrap();
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        assert!(
            element.set_state(gst::State::Paused).is_err(),
            "{retention}"
        );
        let error = bus
            .iter()
            .find_map(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
            .unwrap();
        assert!(error.contains("structure-only"), "{error}");
        let _ = element.set_state(gst::State::Null);
    }
    // The positive control: with none it starts.
    let element = gst::ElementFactory::make("aggregator")
        .property("compliance-file", file.to_str().unwrap())
        .build()
        .unwrap();
    assert!(element.set_state(gst::State::Paused).is_ok());
    let _ = element.set_state(gst::State::Null);
    let _ = std::fs::remove_dir_all(&dir);
}
