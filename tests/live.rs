// SPDX-License-Identifier: MIT OR Apache-2.0
//! A live camera that goes away and comes back: a real RTSP server (the GStreamer RTSP server
//! library) serves a looped clip with faces; the shipped live pipeline
//! (`pipelines/audience-rtsp.pipeline`: fallbacksrc → persons and faces → anonymizer →
//! aggregator) runs against it while the server is stopped and started again twice, each time
//! with its timestamps from zero, the second time at another resolution (a camera reconfigured
//! while it was away). One pipeline, never restarted: windows continue in order, each
//! outage is named (a window field and an integrity event), no dwell spans one, and no frame
//! leaves the anonymizer with a face an independent detector finds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use veil_testkit::paths::repo_path;
use veil_tools::assets;
use veil_wire::event::{DiscontinuityCause, DwellBand, Event, MetricsWindow, TimeDiscontinuity};

/// The outage: long enough to be a break (the pipeline's `max-gap` is 2 s) and for fallbacksrc
/// to fail over and retry.
const OUTAGE: Duration = Duration::from_secs(6);
/// Frames each time the camera is up (15 fps: 6 s).
const FRAMES_PER_RUN: u64 = 90;

/// The served clip: the synthetic faces clip at `width`×`height`, three times over (24 s), a key
/// frame every second so that a reconnecting client decodes at once.
fn served_clip(dir: &Path, width: u32, height: u32) -> PathBuf {
    let out = dir.join(format!("camera-{width}x{height}.mp4"));
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-stream_loop", "2", "-i"])
        .arg(assets::require("media/faces-720p.mp4"))
        .args([
            "-vf",
            &format!("scale={width}:{height}"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-profile:v",
            "baseline",
            "-g",
            "15",
            "-an",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made the served clip");
    out
}

/// A camera: an RTSP server on 127.0.0.1 serving the clip at `/cam`, each session from the
/// clip's start (timestamps from zero), on its own GLib main loop.
struct Camera {
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    server: gst_rtsp_server::RTSPServer,
    source: Option<glib::SourceId>,
}

impl Camera {
    /// Starts serving on `port` (0: any free port).
    fn start(clip: &Path, port: u16) -> Camera {
        let context = glib::MainContext::new();
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( filesrc location=\"{}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
            clip.display()
        ));
        factory.set_shared(false);
        server
            .mount_points()
            .expect("mount points")
            .add_factory("/cam", factory);
        let source = server
            .attach(Some(&context))
            .expect("the RTSP server listens");
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let (running, owned) = (main_loop.clone(), context.clone());
        let thread = std::thread::spawn(move || {
            owned
                .with_thread_default(|| running.run())
                .expect("the server's main context");
        });
        Camera {
            context,
            main_loop,
            thread: Some(thread),
            server,
            source: Some(source),
        }
    }

    fn port(&self) -> u16 {
        u16::try_from(self.server.bound_port()).expect("a bound port")
    }

    /// The camera goes away: no more connections, every session closed.
    fn stop(mut self) {
        // The listening socket's source lives in the server's own context, not the default one.
        if let Some(source) = self
            .source
            .take()
            .and_then(|id| self.context.find_source_by_id(&id))
        {
            source.destroy();
        }
        self.server
            .client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server's thread");
        }
    }
}

/// `pipelines/audience-rtsp.pipeline` filled as `envsubst` fills it, the aggregator's windows
/// shortened to 2 s, and the anonymizer's output recorded to `out` (at 640×360 whatever the
/// camera sends: the recording's muxer takes no size change).
fn live_pipeline(uri: &str, out: &Path) -> String {
    let text = std::fs::read_to_string(repo_path("pipelines/audience-rtsp.pipeline"))
        .expect("pipelines/audience-rtsp.pipeline");
    let models = assets::require("models/centerface.onnx")
        .parent()
        .expect("models")
        .display()
        .to_string();
    let zones = repo_path("configs/zones/vtest.toml").display().to_string();
    let description: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.replace("${URI}", uri)
                .replace("${MODELS}", &models)
                .replace("${ZONES}", &zones)
        })
        .collect();
    let description = description.join(" ").replace("window=60", "window=2");
    assert!(!description.contains('$'), "{description}");
    format!(
        "{description} ! identity name=out ! videoconvert ! videoscale ! video/x-raw,width=640,height=360 ! x264enc speed-preset=ultrafast tune=zerolatency key-int-max=15 ! matroskamux ! filesink location=\"{}\"",
        out.display()
    )
}

/// Faces CenterFace finds at 0.5 in every frame of `path`, and the frames.
fn faces(path: &Path) -> (usize, usize) {
    let frames = veil_tools::frames::run_pipeline(
        &format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! inferfilter model=\"{}\" threshold=0.5",
            path.display(),
            assets::require("models/centerface.onnx").display()
        ),
        |_| {},
    )
    .expect("the check pipeline runs");
    let found = frames.iter().map(|f| f.detections.len()).sum();
    (found, frames.len())
}

/// Waits until `count` reaches `target`, at most `limit`.
fn wait_for(count: &AtomicU64, target: u64, limit: Duration, what: &str) {
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < target {
        assert!(
            start.elapsed() < limit,
            "{what}: {} of {target} frames after {limit:?}",
            count.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_camera_that_goes_away_twice_is_followed_without_a_restart_and_without_a_leak() {
    veil_e2e::init();
    gstfallbackswitch::plugin_register_static().expect("register fallbackswitch");
    let dir = veil_e2e::target_dir().join("live");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let clip = served_clip(&dir, 640, 360);
    // After the second outage the camera comes back reconfigured.
    let reconfigured = served_clip(&dir, 480, 270);
    let recorded = dir.join("anonymized.mkv");

    let mut camera = Camera::start(&clip, 0);
    let port = camera.port();
    let uri = format!("rtsp://127.0.0.1:{port}/cam");
    let pipeline = gst::parse::launch(&live_pipeline(&uri, &recorded))
        .expect("the live pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let frames = Arc::new(AtomicU64::new(0));
    let counted = frames.clone();
    pipeline
        .by_name("out")
        .expect("identity out")
        .static_pad("src")
        .expect("src pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    // The sizes the anonymizer's output had, as caps events tell.
    let widths = Arc::new(std::sync::Mutex::new(Vec::<i32>::new()));
    let seen = widths.clone();
    pipeline
        .by_name("out")
        .expect("identity out")
        .static_pad("src")
        .expect("src pad")
        .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data
                && let gst::EventView::Caps(c) = e.view()
                && let Some(w) = c
                    .caps()
                    .structure(0)
                    .and_then(|s| s.get::<i32>("width").ok())
            {
                seen.lock().expect("widths").push(w);
            }
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().expect("bus");
    pipeline
        .set_state(gst::State::Playing)
        .expect("the live pipeline starts");

    // Up, down, up, down, up: the same pipeline throughout.
    wait_for(
        &frames,
        FRAMES_PER_RUN,
        Duration::from_secs(60),
        "first run",
    );
    for outage in 1..=2 {
        camera.stop();
        let before = frames.load(Ordering::SeqCst);
        std::thread::sleep(OUTAGE);
        let during = frames.load(Ordering::SeqCst) - before;
        // A frame or two may still have been on its way through the chain.
        assert!(
            during <= 8,
            "outage {outage}: {during} frames while the camera was away"
        );
        camera = Camera::start(if outage == 2 { &reconfigured } else { &clip }, port);
        wait_for(
            &frames,
            before + during + FRAMES_PER_RUN,
            Duration::from_secs(60),
            &format!("after outage {outage}"),
        );
    }
    pipeline.send_event(gst::event::Eos::new());
    let mut windows: Vec<MetricsWindow> = Vec::new();
    let mut breaks: Vec<TimeDiscontinuity> = Vec::new();
    let mut errors = Vec::new();
    let mut ended = false;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                match e.structure().and_then(veil_meta::events::from_structure) {
                    Some(Ok(Event::Window(w))) => windows.push(w),
                    Some(Ok(Event::Discontinuity(d))) => breaks.push(d),
                    _ => {}
                }
            }
            gst::MessageView::Error(e) => errors.push(format!("{} ({:?})", e.error(), e.debug())),
            gst::MessageView::Eos(_) => {
                ended = true;
                break;
            }
            _ => {}
        }
    }
    let anonymizer = pipeline.by_name("anon").expect("the anonymizer");
    let count = |name: &str| anonymizer.property::<u64>(name);
    let (processed, masked, blacked_out) = (
        count("frames-processed"),
        count("frames-masked"),
        count("frames-blacked-out"),
    );
    pipeline.set_state(gst::State::Null).expect("to NULL");
    camera.stop();
    eprintln!("anonymizer: {processed} frames, {masked} masked, {blacked_out} blacked out");
    // The faces were masked, not the frames blacked out (which would also leave no face): the
    // clip has faces in most frames; a frame or two per reconnection may be flagged corrupted.
    assert!(
        masked * 2 > processed,
        "{masked} of {processed} frames masked"
    );
    assert!(
        blacked_out * 20 < processed,
        "{blacked_out} of {processed} frames blacked out"
    );
    assert!(errors.is_empty(), "the pipeline failed: {errors:#?}");
    // The reconfigured camera's frames went through at their own size.
    let widths = widths.lock().expect("widths").clone();
    eprintln!("widths out of the anonymizer: {widths:?}");
    assert!(
        widths.contains(&640) && widths.last() == Some(&480),
        "{widths:?}"
    );
    assert!(ended, "no EOS after the camera's last run");

    for w in &windows {
        eprintln!(
            "window {} OTS {} dwell {:?} breaks {}",
            w.window_start,
            w.opportunities_to_see,
            w.dwell_bands,
            w.discontinuities.len()
        );
    }
    eprintln!("breaks: {breaks:#?}");
    // Each outage is one break, about as long as the camera was away (plus reconnecting).
    assert_eq!(breaks.len(), 2, "{breaks:#?}");
    for b in &breaks {
        assert_eq!(b.cause, DiscontinuityCause::Stall, "{b:?}");
        assert!(
            b.gap_s >= OUTAGE.as_secs_f64() - 1.0 && b.gap_s < 60.0,
            "{b:?}"
        );
        // The windows it overlaps say so.
        let listing = windows
            .iter()
            .filter(|w| w.discontinuities.contains(b))
            .count();
        assert!(listing >= 2, "{listing} windows list {b:?}");
    }
    // Windows continue, in order, none twice, through both outages.
    assert!(windows.len() >= 12, "{} windows", windows.len());
    for pair in windows.windows(2) {
        assert!(
            pair[0].window_end <= pair[1].window_start,
            "out of order or twice: {} then {}",
            pair[0].window_start,
            pair[1].window_start
        );
    }
    assert!(windows.iter().any(|w| w.opportunities_to_see > 0));
    // Each run of the camera lasts ~6 s: a dwell of 15 s or more would span an outage.
    for w in &windows {
        for band in [DwellBand::UpTo30s, DwellBand::UpTo60s, DwellBand::Over60s] {
            assert_eq!(w.dwell(band), 0, "{} {w:?}", band.label());
        }
    }

    // Nothing left the anonymizer with a face: the control finds faces in what was served.
    let served_faces = faces(&clip).0 + faces(&reconfigured).0;
    assert!(
        served_faces > 200,
        "control: {served_faces} faces in the served clip"
    );
    let (leaked, recorded_frames) = faces(&recorded);
    assert!(
        recorded_frames as u64 >= 3 * FRAMES_PER_RUN,
        "{recorded_frames} frames recorded"
    );
    eprintln!(
        "{served_faces} faces in the served clip; {leaked} in {recorded_frames} recorded frames"
    );
    assert_eq!(leaked, 0, "faces found in the anonymizer's output");
}
