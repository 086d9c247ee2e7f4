// SPDX-License-Identifier: MIT OR Apache-2.0
//! Benchmark: `anonymizer` alone on 1080p I420 with ten 200×200 face masks, per mode.
//! Run with `cargo bench -p gst-plugin-veilanonymizer`.

use std::time::Instant;

use veil_meta::{Detection, InferenceStatus, NormalizedBox, StatusMeta};

fn main() {
    gst::init().unwrap();
    veil_meta::status::register();
    gstveilanonymizer::plugin_register_static().unwrap();
    let (w, h) = (1920u32, 1080u32);
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap();
    let pixels: Vec<u8> = (0..info.size())
        .map(|i| ((i * 2654435761usize) >> 13) as u8)
        .collect();
    // Ten 200×200 masks (after mask-scale 1.3: boxes of ~154 px grown to 200).
    let side = 200.0 / 1.3;
    let faces: Vec<NormalizedBox> = (0..10)
        .map(|i| {
            let (x, y) = (
                60.0 + (i % 5) as f64 * 360.0,
                150.0 + (i / 5) as f64 * 500.0,
            );
            NormalizedBox {
                x_min: x / w as f64,
                y_min: y / h as f64,
                x_max: (x + side) / w as f64,
                y_max: (y + side) / h as f64,
            }
        })
        .collect();
    println!("anonymizer on 1920x1080 I420, 10 masks of 200x200 px (median of 200 frames)");
    for mode in ["blur", "pixelate", "solid", "blackout"] {
        let element = gst::ElementFactory::make("anonymizer")
            .property_from_str("mode", mode)
            .build()
            .unwrap();
        let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
        harness.play();
        harness.set_src_caps(info.to_caps().unwrap());
        let mut times = Vec::new();
        for _ in 0..220 {
            let mut buf = gst::Buffer::from_mut_slice(pixels.clone());
            {
                let b = buf.get_mut().unwrap();
                StatusMeta {
                    status: InferenceStatus::Ran,
                    model: "m".into(),
                    element: "f".into(),
                    labels: vec!["face".into()],
                    age: 0,
                }
                .attach(b)
                .unwrap();
                for f in &faces {
                    Detection {
                        label: "face".into(),
                        label_id: 0,
                        confidence: 0.9,
                        bbox: *f,
                        landmarks: None,
                        object_id: None,
                    }
                    .attach(b, w, h);
                }
            }
            let t = Instant::now();
            harness.push(buf).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            drop(harness.pull().unwrap());
        }
        let mut steady: Vec<f64> = times[20..].to_vec();
        steady.sort_by(f64::total_cmp);
        println!(
            "  {mode:9} {:6.3} ms/frame (p90 {:.3})",
            steady[steady.len() / 2],
            steady[steady.len() * 9 / 10]
        );
    }
}
