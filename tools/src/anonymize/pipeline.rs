// SPDX-License-Identifier: MIT OR Apache-2.0
//! The GStreamer side of the anonymize job: one pipeline per file.
//!
//! ```text
//! video:  filesrc ! parsebin ─┬─ video ─ decodebin ! queue ! [capssetter] ! videoflip ! videoconvert
//!                             │          ! inferfilter ! anonymizer ! [videobox] ! videoconvert
//!                             │          ! I420 ! x264enc|vp9enc ─┐
//!                             ├─ audio ─ queue (copied) ──────────┤
//!                             │     or ─ decodebin ! audioconvert ! audioresample ! encoder ─┤
//!                             └─ other ─ queue (if the muxer holds it) or dropped ─┐         │
//!                                                                  mp4mux|qtmux|matroskamux|webmmux ! filesink
//! image:  filesrc ! decodebin ! queue ! videoflip ! videoconvert ! inferfilter ! anonymizer
//!                   ! videoconvert ! <the input's format> ! jpegenc|pngenc ! filesink
//! ```
//! Tag events never reach the muxer: the input's metadata (place, device, time) is not copied.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::Options;
use super::plan::{self, Container, Exit, ImageFormat, VideoCodec};
use super::probe::Probe;

/// What the streaming threads tell the job.
#[derive(Default)]
struct Shared {
    notes: Vec<String>,
    /// Why the job must fail although no element posted an error (e.g. a 16-bit image).
    refused: Option<String>,
    /// Video frames that left the anonymizer, and the end (ns) of the latest.
    frames: u64,
    end_ns: u64,
    /// The start (ns) of the earliest and the end of the latest buffer read of any stream the
    /// output keeps: the span read, in the input's own timestamps (which need not start at 0).
    first_ns: Option<u64>,
    read_ns: u64,
    /// Each branch's first pad, where an end-of-stream goes in when the input breaks off.
    entries: Vec<gst::Pad>,
    /// Muxer pads requested before the pipeline started, by template, taken by the streams as
    /// they appear: Matroska/WebM refuse pads once running.
    mux_pads: Vec<(String, gst::Pad)>,
}

type SharedRef = Arc<Mutex<Shared>>;

/// Elements named with this prefix read the input; an error from one of them (or from inside
/// them) after frames were written means the input broke off, not the job.
const INPUT: &str = "input";

/// Where the output goes.
pub enum Target {
    Video(Container),
    Image(ImageFormat),
}

/// Runs the job on `input`, writing `part`; returns the exit code and the lines to show.
///
/// Errors: why nothing usable was written (the caller removes `part`).
pub fn run(
    input: &Path,
    part: &Path,
    probe: &Probe,
    target: Target,
    options: &Options,
    report: &mut dyn FnMut(&str),
) -> Result<Exit, String> {
    let shared: SharedRef = Arc::default();
    let pipeline = gst::Pipeline::new();
    let src = make("filesrc", &format!("{INPUT}-file"))?;
    src.set_property("location", input);
    let sink = make("filesink", "output-file")?;
    sink.set_property("location", part);
    pipeline
        .add_many([&src, &sink])
        .map_err(|e| e.to_string())?;
    let chain = Chain {
        options: options.clone(),
        probe: probe.clone(),
        shared: shared.clone(),
    };
    match target {
        Target::Image(format) => {
            let decode = make("decodebin", &format!("{INPUT}-decode"))?;
            pipeline.add(&decode).map_err(|e| e.to_string())?;
            src.link(&decode).map_err(|e| e.to_string())?;
            chain.on_pad_added(&pipeline, &decode, move |chain, pipeline, pad| {
                chain.image(pipeline, pad, format, &sink)
            });
        }
        Target::Video(container) => {
            let parse = make("parsebin", &format!("{INPUT}-parse"))?;
            let mux = make(container.muxer(), "output-mux")?;
            pipeline
                .add_many([&parse, &mux])
                .map_err(|e| e.to_string())?;
            gst::Element::link_many([&src, &parse]).map_err(|e| e.to_string())?;
            mux.link(&sink).map_err(|e| e.to_string())?;
            let audio = match options.audio {
                plan::AudioChoice::Keep => probe.audio_streams,
                plan::AudioChoice::Drop => 0,
            };
            for (template, count) in [("video_%u", probe.video_streams), ("audio_%u", audio)] {
                for _ in 0..count {
                    let pad = chain.mux_pad(&mux, template)?;
                    shared.lock().unwrap().mux_pads.push((template.into(), pad));
                }
            }
            // Muxer pads no stream took (the probe counted a stream parsebin does not expose)
            // would make the muxer wait for them for ever.
            let (unused, mux_weak) = (shared.clone(), mux.downgrade());
            parse.connect_no_more_pads(move |_| {
                let pads: Vec<_> = unused.lock().unwrap().mux_pads.drain(..).collect();
                if let Some(mux) = mux_weak.upgrade() {
                    for (_, pad) in pads {
                        mux.release_request_pad(&pad);
                    }
                }
            });
            chain.on_pad_added(&pipeline, &parse, move |chain, pipeline, pad| {
                chain.stream(pipeline, pad, container, &mux)
            });
        }
    }
    let result = drive(&pipeline, probe, &shared, report);
    let _ = pipeline.set_state(gst::State::Null);
    for note in shared.lock().unwrap().notes.drain(..) {
        report(&note);
    }
    result
}

fn make(factory: &str, name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|_| missing_element(factory))
}

/// A queue for a copied or re-encoded stream beside the video: the muxer interleaves by time,
/// so these streams run ahead of the slower video analysis by however much the file
/// interleaves them; a bounded queue would stall the demuxer (and so the video) for good.
/// Audio is small beside video.
fn unbounded_queue(name: &str) -> Result<gst::Element, String> {
    let queue = make("queue", name)?;
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 0u64);
    Ok(queue)
}

fn missing_element(factory: &str) -> String {
    let package = match factory {
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "avenc_aac" => "gstreamer1.0-libav",
        "parsebin" | "decodebin" | "videoconvert" | "audioconvert" | "audioresample"
        | "opusenc" => "gstreamer1.0-plugins-base",
        "inferfilter" | "anonymizer" => {
            return format!(
                "the Veil element {factory} is not found: build the plugins (cargo build) and set GST_PLUGIN_PATH (scripts/lib.sh does)"
            );
        }
        _ => "gstreamer1.0-plugins-good",
    };
    format!("the GStreamer element {factory} is missing (install the Debian package {package})")
}

/// Plays the pipeline to its end, printing progress every second.
fn drive(
    pipeline: &gst::Pipeline,
    probe: &Probe,
    shared: &SharedRef,
    report: &mut dyn FnMut(&str),
) -> Result<Exit, String> {
    pipeline.set_state(gst::State::Playing).map_err(|_| {
        first_error(pipeline).unwrap_or_else(|| "the pipeline did not start".into())
    })?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let mut cut: Option<String> = None;
    let mut cut_at: Option<Instant> = None;
    let mut last_progress = Instant::now();
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(200));
        if let Some(reason) = shared.lock().unwrap().refused.take() {
            return Err(reason);
        }
        if super::interrupted() {
            return Err("interrupted: nothing written".into());
        }
        if last_progress.elapsed() >= Duration::from_secs(1) && !probe.image {
            last_progress = Instant::now();
            let s = shared.lock().unwrap();
            let total = probe
                .duration_ns
                .map(|d| {
                    format!(
                        " of {} ({:.0}%)",
                        plan::clock(d),
                        100.0 * s.end_ns as f64 / d as f64
                    )
                })
                .unwrap_or_default();
            report(&format!(
                "progress: {}{total}, {} frames",
                plan::clock(s.end_ns),
                s.frames
            ));
        }
        if cut_at.is_some_and(|t| t.elapsed() > Duration::from_secs(30)) {
            return Err(format!(
                "{} (and the output could not be finished)",
                cut.unwrap_or_default()
            ));
        }
        let Some(msg) = msg else { continue };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => {
                let text = format!("{}", err.error());
                let detail = err
                    .debug()
                    .map(|d| d.to_string())
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(" ({})", d.lines().last().unwrap_or("")))
                    .unwrap_or_default();
                let from_input = msg.src().is_some_and(reads_input);
                let frames = shared.lock().unwrap().frames;
                if from_input && frames > 0 {
                    // The input broke off: finish the output with what was read.
                    if cut.is_none() {
                        cut = Some(text);
                        cut_at = Some(Instant::now());
                        for pad in shared.lock().unwrap().entries.iter() {
                            pad.send_event(gst::event::Eos::new());
                        }
                    }
                    continue;
                }
                return Err(format!("{text}{detail}"));
            }
            gst::MessageView::Warning(w) => {
                let text = w.error().to_string();
                if !text.contains("allow-unanalyzed") {
                    report(&format!("warning: {text}"));
                }
            }
            _ => {}
        }
    }
    let mut s = shared.lock().unwrap();
    for note in s.notes.drain(..) {
        report(&note);
    }
    if s.frames == 0 {
        return Err("no frame could be decoded".into());
    }
    // How far the input was read, from its first timestamp; any kept stream counts (audio may
    // rightly outlast the video).
    let read = s.read_ns.saturating_sub(s.first_ns.unwrap_or(0));
    if let Some(reason) = cut {
        report(&format!(
            "warning: input ended early at {}: {reason}; the output holds the {} frames read before it",
            plan::clock(read),
            s.frames
        ));
        return Ok(Exit::EndedEarly);
    }
    if !probe.image && plan::ended_early(read, probe.duration_ns) {
        report(&format!(
            "warning: input ended early at {} of the {} its container declares (the file is cut or damaged); the output holds the {} frames read before it",
            plan::clock(read),
            plan::clock(probe.duration_ns.unwrap_or(0)),
            s.frames
        ));
        return Ok(Exit::EndedEarly);
    }
    Ok(Exit::Ok)
}

fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(err.error().to_string());
        }
    }
    None
}

/// Whether `obj` is (inside) one of the elements that read the input.
fn reads_input(obj: &gst::Object) -> bool {
    let mut current = Some(obj.clone());
    while let Some(o) = current {
        if o.name().starts_with(INPUT) {
            return true;
        }
        current = o.parent();
    }
    false
}

/// Builds the branches as the input's streams appear.
#[derive(Clone)]
struct Chain {
    options: Options,
    probe: Probe,
    shared: SharedRef,
}

impl Chain {
    fn note(&self, line: String) {
        self.shared.lock().unwrap().notes.push(line);
    }

    /// Runs `build` for each pad `element` adds; an error fails the job with its reason.
    fn on_pad_added(
        &self,
        pipeline: &gst::Pipeline,
        element: &gst::Element,
        build: impl Fn(&Chain, &gst::Pipeline, &gst::Pad) -> Result<(), String> + Send + Sync + 'static,
    ) {
        let (chain, pipeline_weak) = (self.clone(), pipeline.downgrade());
        element.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline_weak.upgrade() else {
                return;
            };
            if let Err(e) = build(&chain, &pipeline, pad) {
                chain.refuse(&pipeline, e);
            }
        });
    }

    fn refuse(&self, pipeline: &gst::Pipeline, reason: String) {
        self.shared.lock().unwrap().refused.get_or_insert(reason);
        // Wakes the bus loop.
        let _ = pipeline.post_message(gst::message::Application::new(gst::Structure::new_empty(
            "veil-anonymize-refused",
        )));
    }

    /// A stream out of `parsebin`.
    fn stream(
        &self,
        pipeline: &gst::Pipeline,
        pad: &gst::Pad,
        container: Container,
        mux: &gst::Element,
    ) -> Result<(), String> {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let shared = self.shared.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some((buf, pts)) = info.buffer().and_then(|b| Some((b, b.pts()?))) {
                let end = pts + buf.duration().unwrap_or(gst::ClockTime::ZERO);
                let mut s = shared.lock().unwrap();
                s.read_ns = s.read_ns.max(end.nseconds());
                s.first_ns = Some(s.first_ns.map_or(pts.nseconds(), |f| f.min(pts.nseconds())));
            }
            gst::PadProbeReturn::Ok
        });
        let media = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let description = codec_description(&caps);
        if media.starts_with("video/") || media.starts_with("image/") {
            let decode = make("decodebin", &format!("{INPUT}-decode-{}", pad.name()))?;
            let sink = self.mux_pad(mux, "video_%u")?;
            add_linked(pipeline, pad, &[&decode])?;
            self.on_pad_added(pipeline, &decode, move |chain, pipeline, raw| {
                chain.video(pipeline, raw, &description, container, &sink)
            });
            return Ok(());
        }
        let template = if media.starts_with("audio/") {
            "audio_%u"
        } else {
            "subtitle_%u"
        };
        // Only audio is copied. Picture subtitles (bitmaps) could show faces; text subtitles can
        // name people, and a sparse subtitle stream stalls the muxer behind the video analysis
        // (an MP4 with mov_text hung for good).
        let copyable = media.starts_with("audio/");
        let fits = copyable
            && mux
                .pad_template(template)
                .is_some_and(|t| t.caps().can_intersect(&caps));
        if media.starts_with("audio/") && self.options.audio == plan::AudioChoice::Drop {
            self.note(format!("audio: {description} dropped (--audio drop)"));
            return self.discard(pipeline, pad);
        }
        if fits {
            let queue = unbounded_queue(&format!("copy-{}", pad.name()))?;
            let sink = self.mux_pad(mux, template)?;
            add_linked(pipeline, pad, &[&queue])?;
            link(&queue, &sink)?;
            self.entry(&queue);
            let kind = if template == "audio_%u" {
                "audio"
            } else {
                "subtitles"
            };
            self.note(format!("{kind}: {description} copied as it is"));
            return Ok(());
        }
        if media.starts_with("audio/") {
            let (encoder, name) = container.audio_encoder();
            let index = pad.name();
            let queue = unbounded_queue(&format!("audio-queue-{index}"))?;
            let decode = make("decodebin", &format!("{INPUT}-audio-{index}"))?;
            add_linked(pipeline, pad, &[&queue, &decode])?;
            self.entry(&queue);
            let convert = make("audioconvert", &format!("audio-convert-{index}"))?;
            let resample = make("audioresample", &format!("audio-resample-{index}"))?;
            let encode = make(encoder, &format!("audio-encode-{index}"))?;
            let sink = self.mux_pad(mux, "audio_%u")?;
            self.on_pad_added(pipeline, &decode, move |_, pipeline, raw| {
                add_linked(pipeline, raw, &[&convert, &resample, &encode])?;
                link(&encode, &sink)
            });
            self.note(format!(
                "audio: {description} re-encoded to {name} ({} cannot hold {description})",
                container.name()
            ));
            return Ok(());
        }
        self.note(format!(
            "dropped a {description} stream: {} cannot hold it",
            container.name()
        ));
        self.discard(pipeline, pad)
    }

    /// A stream that is not written still has to be consumed, or the demuxer stops.
    fn discard(&self, pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .map_err(|e| e.to_string())?;
        add_linked(pipeline, pad, &[&sink])?;
        self.entry(&sink);
        Ok(())
    }

    fn entry(&self, element: &gst::Element) {
        if let Some(pad) = element.static_pad("sink") {
            self.shared.lock().unwrap().entries.push(pad);
        }
    }

    /// A new request pad of the muxer, with the input's metadata held back. Requested as soon
    /// as the stream appears, before any data flows: Matroska writes its headers when the
    /// first data arrives, with the pads it has by then.
    fn mux_pad(&self, mux: &gst::Element, template: &str) -> Result<gst::Pad, String> {
        {
            let mut s = self.shared.lock().unwrap();
            if let Some(i) = s.mux_pads.iter().position(|(t, _)| t == template) {
                return Ok(s.mux_pads.remove(i).1);
            }
        }
        let sink = mux
            .request_pad_simple(template)
            .ok_or_else(|| format!("{} refused another {template} stream", mux.name()))?;
        sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            match &info.data {
                // Tags and chapters (TOC) can name people and places. Handled: the probe
                // consumes the event (Drop would have GStreamer unref it again).
                Some(gst::PadProbeData::Event(ev))
                    if matches!(ev.type_(), gst::EventType::Tag | gst::EventType::Toc) =>
                {
                    gst::PadProbeReturn::Handled
                }
                _ => gst::PadProbeReturn::Ok,
            }
        });
        Ok(sink)
    }

    /// The analysis part every picture goes through: upright, faces found, faces masked.
    fn analysis(&self, variable_rate: bool) -> String {
        let o = &self.options;
        let rate = if variable_rate {
            "capssetter caps=\"video/x-raw,framerate=(fraction)0/1\" ! "
        } else {
            ""
        };
        format!(
            "queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! {rate}videoconvert ! videoflip video-direction={} ! videoconvert ! \
             inferfilter name=faces model=\"{}\" {} ! anonymizer name=anon {}",
            self.direction(),
            o.models.join("centerface.onnx").display(),
            o.profile.faces(),
            o.profile.masks()
        )
    }

    /// A decoded video stream: analysis, then the encoder the plan chose.
    fn video(
        &self,
        pipeline: &gst::Pipeline,
        raw: &gst::Pad,
        coded: &str,
        container: Container,
        sink: &gst::Pad,
    ) -> Result<(), String> {
        let caps = raw.current_caps().ok_or("the decoder gave no caps")?;
        let info = gst_video::VideoInfo::from_caps(&caps)
            .map_err(|_| format!("not a raw video stream: {caps}"))?;
        let (mut w, mut h) = (info.width(), info.height());
        if self.quarter_turn() {
            (w, h) = (h, w);
        }
        let rate = info.fps();
        let plan = plan::plan_video(
            w,
            h,
            (rate.numer(), rate.denom()),
            container,
            self.options.codec,
        )?;
        let pad = if plan.pad != (0, 0) {
            format!(
                "videobox right=-{} bottom=-{} fill=black ! ",
                plan.pad.0, plan.pad.1
            )
        } else {
            String::new()
        };
        let encoder = match plan.codec {
            VideoCodec::H264 => "x264enc speed-preset=veryfast pass=qual quantizer=20 ! h264parse",
            VideoCodec::Vp9 => {
                "vp9enc deadline=1 cpu-used=5 end-usage=cq cq-level=24 target-bitrate=8000000 threads=2 row-mt=true"
            }
        };
        let description = format!(
            "{} ! {pad}videoconvert ! video/x-raw,format=I420 ! {encoder}",
            self.analysis(plan.variable_rate)
        );
        let bin = self.branch(pipeline, raw, &description)?;
        link(&bin, sink)?;
        let codec = match plan.codec {
            VideoCodec::H264 => "H.264",
            VideoCodec::Vp9 => "VP9",
        };
        self.note(format!(
            "video: {w}×{h} {coded} ({}) → {codec} 8-bit 4:2:0 in {}, faces masked",
            info.format().to_str(),
            container.name()
        ));
        if self.direction() != "identity" {
            self.note(self.turned_note());
        }
        for n in plan.notes {
            self.note(format!("video: {n}"));
        }
        Ok(())
    }

    /// The `videoflip` direction that turns the picture upright.
    fn direction(&self) -> &'static str {
        self.options
            .rotation
            .video_direction(self.probe.orientation.as_deref())
    }

    /// What the job says about turning the picture.
    fn turned_note(&self) -> String {
        let why = match (self.options.rotation, self.probe.orientation.as_deref()) {
            (plan::Rotation::Auto, Some(tag)) => format!("the file's orientation says {tag}"),
            _ => "--rotate".into(),
        };
        format!(
            "orientation: turned upright ({}, videoflip video-direction={}) before faces were searched, written upright",
            why,
            self.direction()
        )
    }

    /// Whether turning the picture upright swaps width and height.
    fn quarter_turn(&self) -> bool {
        plan::swaps_sides(self.direction())
    }

    /// A decoded image: analysis, then the input's pixel format and the output's encoder.
    fn image(
        &self,
        pipeline: &gst::Pipeline,
        raw: &gst::Pad,
        format: ImageFormat,
        sink: &gst::Element,
    ) -> Result<(), String> {
        let caps = raw.current_caps().ok_or("the decoder gave no caps")?;
        let info = gst_video::VideoInfo::from_caps(&caps)
            .map_err(|_| format!("not a raw image: {caps}"))?;
        let f = info.format_info();
        if f.depth().iter().any(|&d| d > 8) {
            return Err(format!(
                "{}-bit images are not supported (the output would lose its bit depth): convert it to 8 bits per channel first",
                f.depth()[0]
            ));
        }
        // The same pixel layout out as in (grey stays grey, alpha stays), where the encoder
        // takes it; otherwise the encoder's nearest.
        let keep = format!("video/x-raw,format={}", info.format().to_str());
        let caps_out: gst::Caps = keep.parse().map_err(|_| format!("bad caps {keep}"))?;
        let encoder_takes = gst::ElementFactory::find(match format {
            ImageFormat::Jpeg => "jpegenc",
            ImageFormat::Png => "pngenc",
        })
        .and_then(|f| {
            f.static_pad_templates()
                .into_iter()
                .find(|t| t.direction() == gst::PadDirection::Sink)
        })
        .is_some_and(|t| t.caps().can_intersect(&caps_out));
        let keep = if encoder_takes {
            format!(" ! {keep}")
        } else {
            String::new()
        };
        let description = format!(
            "{} ! videoconvert{keep} ! {}",
            self.analysis(false),
            format.encoder()
        );
        let bin = self.branch(pipeline, raw, &description)?;
        bin.link(sink).map_err(|e| e.to_string())?;
        if self.direction() != "identity" {
            self.note(self.turned_note());
        }
        let alpha = if f.has_alpha() { ", alpha kept" } else { "" };
        let (mut w, mut h) = (info.width(), info.height());
        if self.quarter_turn() {
            (w, h) = (h, w);
        }
        self.note(format!(
            "image: {w}×{h} {}{alpha}, faces masked",
            info.format().to_str()
        ));
        Ok(())
    }

    /// Adds the branch `description` after `raw`, counting the frames that leave it.
    fn branch(
        &self,
        pipeline: &gst::Pipeline,
        raw: &gst::Pad,
        description: &str,
    ) -> Result<gst::Element, String> {
        let bin = gst::parse::bin_from_description(description, true)
            .map_err(|e| format!("cannot build the chain: {e}"))?;
        let bin = bin.upcast::<gst::Element>();
        // Frames counted where they leave the anonymizer: what the output holds.
        if let Some(anon) = bin
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("anon"))
            .and_then(|a| a.static_pad("src"))
        {
            let shared = self.shared.clone();
            anon.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buf) = info.buffer() {
                    let mut s = shared.lock().unwrap();
                    s.frames += 1;
                    if let Some(pts) = buf.pts() {
                        let end = pts + buf.duration().unwrap_or(gst::ClockTime::ZERO);
                        s.end_ns = s.end_ns.max(end.nseconds());
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        add_linked(pipeline, raw, &[&bin])?;
        self.entry(&bin);
        Ok(bin)
    }
}

/// Links `last`'s source pad to `sink`.
fn link(last: &gst::Element, sink: &gst::Pad) -> Result<(), String> {
    let src = last.static_pad("src").ok_or("no source pad")?;
    src.link(sink)
        .map_err(|e| format!("cannot link {} to the muxer: {e:?}", last.name()))?;
    Ok(())
}

/// The codec's name for people ("MPEG-4 AAC"); the media type when the caps are not fixed (the
/// description function asserts fixed caps).
fn codec_description(caps: &gst::Caps) -> String {
    let mut fixed = caps.clone();
    fixed.fixate();
    if !fixed.is_empty() && fixed.is_fixed() {
        gst_pbutils::pb_utils_get_codec_description(&fixed).to_string()
    } else {
        caps.structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// Adds `elements` to the pipeline, links `from` → elements in a chain, and starts them.
fn add_linked(
    pipeline: &gst::Pipeline,
    from: &gst::Pad,
    elements: &[&gst::Element],
) -> Result<(), String> {
    pipeline.add_many(elements).map_err(|e| e.to_string())?;
    let first = elements.first().ok_or("nothing to link")?;
    let sink = first.static_pad("sink").ok_or("no sink pad")?;
    from.link(&sink)
        .map_err(|e| format!("cannot link {}: {e:?}", from.name()))?;
    gst::Element::link_many(elements.iter().copied()).map_err(|e| e.to_string())?;
    for e in elements {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    Ok(())
}
