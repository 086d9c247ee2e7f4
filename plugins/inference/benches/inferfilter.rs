// SPDX-License-Identifier: MIT OR Apache-2.0
//! Benchmark: bare ONNX Runtime inference against the same model inside `inferfilter`, and
//! pre-processing cost. Prints figures; run with `cargo bench -p gst-plugin-veilinference`.
//!
//! * bare: `Model::run` on a prepared tensor (what the model itself costs), median of N runs;
//! * in the element: wall time between a buffer entering `inferfilter`'s sink pad and leaving its
//!   src pad (pad probes), median over a real decoded clip, plus the whole pipeline's fps;
//! * pre-processing: 1080p frames → model tensor, per input format.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstveilinference::decoders::DecoderKind;
use gstveilinference::model::Model;
use gstveilinference::preprocess::{FrameView, Letterbox, PackedFormat, Preprocessor, YuvColor};
use veil_tools::assets;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median ms of `model` on a `w`×`h` input over `runs` runs, after warm-up.
fn bare_inference(model_path: &str, w: u32, h: u32, runs: usize) -> f64 {
    let mut model = Model::load(&assets::require(model_path), 1).expect("model");
    // A real-looking input: mid-grey with a gradient, so no path is trivially sparse.
    let input: Vec<f32> = (0..(3 * w * h) as usize)
        .map(|i| (i % 255) as f32)
        .collect();
    for _ in 0..3 {
        model.run(&input, w, h, |_| ()).expect("run");
    }
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                model.run(&input, w, h, |_| ()).expect("run");
                ms(t.elapsed())
            })
            .collect(),
    )
}

struct PipelineFigures {
    frames: usize,
    fps: f64,
    element_ms: f64,
}

/// Runs `description` (which must name its inferfilter `f`) to EOS and times the element.
fn pipeline(description: &str) -> PipelineFigures {
    let pipeline = gst::parse::launch(description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .unwrap();
    let filter = pipeline.by_name("f").expect("an element named f");
    let entered: Arc<Mutex<Option<Instant>>> = Arc::default();
    let spent: Arc<Mutex<Vec<f64>>> = Arc::default();
    {
        let entered_in = entered.clone();
        filter
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                *entered_in.lock().unwrap() = Some(Instant::now());
                gst::PadProbeReturn::Ok
            });
        let spent = spent.clone();
        filter
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Some(t) = entered.lock().unwrap().take() {
                    spent.lock().unwrap().push(ms(t.elapsed()));
                }
                gst::PadProbeReturn::Ok
            });
    }
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    let wall = start.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null).unwrap();
    let spent = spent.lock().unwrap().clone();
    // The first frames include session warm-up; leave them out of the per-frame figure.
    let steady: Vec<f64> = spent.iter().skip(3).copied().collect();
    PipelineFigures {
        frames: spent.len(),
        fps: spent.len() as f64 / wall,
        element_ms: median(steady),
    }
}

fn preprocess_ms(format: &str, runs: usize) -> f64 {
    let (w, h) = (1920u32, 1080u32);
    let lb = Letterbox::new(w, h, 640, 384);
    let norm = DecoderKind::CenterFace.default_normalization();
    let mut tensor = vec![0f32; 3 * 640 * 384];
    let mut pre = Preprocessor::new();
    let color = YuvColor {
        bt709: true,
        full_range: false,
    };
    let y: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
    let u: Vec<u8> = (0..w * h / 4).map(|i| (i % 241) as u8).collect();
    let v = u.clone();
    let uv: Vec<u8> = (0..w * h / 2).map(|i| (i % 239) as u8).collect();
    let bgrx: Vec<u8> = (0..w * h * 4).map(|i| (i % 253) as u8).collect();
    let ws = w as usize;
    let frame = match format {
        "I420" => FrameView::I420 {
            y: (&y, ws),
            u: (&u, ws / 2),
            v: (&v, ws / 2),
            color,
        },
        "NV12" => FrameView::Nv12 {
            y: (&y, ws),
            uv: (&uv, ws),
            color,
        },
        _ => FrameView::Packed {
            format: PackedFormat::Bgrx,
            data: &bgrx,
            stride: ws * 4,
        },
    };
    for _ in 0..5 {
        pre.run(&frame, &lb, &norm, &mut tensor).unwrap();
    }
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                pre.run(&frame, &lb, &norm, &mut tensor).unwrap();
                ms(t.elapsed())
            })
            .collect(),
    )
}

fn main() {
    gst::init().unwrap();
    gstveilinference::plugin_register_static().unwrap();
    println!("inferfilter benchmark (ONNX Runtime, 1 intra-op thread, medians)\n");

    println!(
        "pre-processing 1920x1080 -> 640x384 tensor (resize + colour conversion + normalization):"
    );
    for format in ["I420", "NV12", "BGRx"] {
        println!("  {format:5} {:6.2} ms/frame", preprocess_ms(format, 100));
    }

    let clip = assets::require("media/faces-720p.mp4");
    let vtest = assets::require("media/vtest.avi");
    let cases = [
        (
            "CenterFace 640x384 (1280x720 I420 clip)",
            "models/centerface.onnx",
            (640u32, 384u32),
            format!(
                "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! \
                 inferfilter name=f model={} threads=1 ! fakesink",
                clip.display(),
                assets::require("models/centerface.onnx").display()
            ),
        ),
        (
            "NanoDet-m 416x416 (768x576 I420 vtest.avi, first 200 frames)",
            "models/nanodet-m.onnx",
            (416, 416),
            format!(
                "filesrc location={} ! decodebin ! identity eos-after=200 ! \
                 inferfilter name=f decoder=nanodet model={} threads=1 ! fakesink",
                vtest.display(),
                assets::require("models/nanodet-m.onnx").display()
            ),
        ),
    ];
    for (title, model, (w, h), description) in cases {
        let bare = bare_inference(model, w, h, 30);
        let p = pipeline(&description);
        println!("\n{title}:");
        println!("  bare ONNX Runtime inference   {bare:7.2} ms");
        println!(
            "  inside inferfilter            {:7.2} ms/frame (element time per buffer)",
            p.element_ms
        );
        println!(
            "  whole pipeline incl. decode   {:7.2} fps over {} frames ({:.2} ms/frame)",
            p.fps,
            p.frames,
            1e3 / p.fps
        );
        println!(
            "  element / bare                {:7.3}  (goal <= 1.10)",
            p.element_ms / bare
        );
    }
}
