// SPDX-License-Identifier: MIT OR Apache-2.0
//! What an input file holds, asked of GStreamer's discoverer before the job builds a pipeline:
//! so that an empty, unreadable or undecodable file is refused with its reason (and the package
//! that would decode it) and nothing is written.

use std::path::Path;

use gst_pbutils::prelude::*;

use super::plan;

/// The largest picture the job takes: 8K is 33 megapixels, the largest phone photos about 200.
pub const MAX_PIXELS: u64 = 250_000_000;

/// The input as the job needs to know it.
#[derive(Debug, Clone)]
pub struct Probe {
    /// A still image (JPEG, PNG), not a video.
    pub image: bool,
    /// The duration the container declares, if any.
    pub duration_ns: Option<u64>,
    /// The first video stream's `image-orientation` tag (`rotate-90`, `flip-rotate-0`, …), from
    /// the stream's tags or the file's (EXIF is a file tag).
    pub orientation: Option<String>,
    pub video_streams: usize,
    pub audio_streams: usize,
    pub other_streams: usize,
}

/// Probes `path`.
///
/// Errors (as the message the user reads, without the file name): an empty file, a type that is
/// not recognised, a file the demuxer cannot read (e.g. an MP4 cut before its index was written),
/// no video stream, a missing decoder with the Debian package that has one.
pub fn probe(path: &Path) -> Result<Probe, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if meta.len() == 0 {
        return Err("the file is empty (0 bytes)".into());
    }
    if let Some(reason) = mp4_without_index(path) {
        return Err(reason);
    }
    let absolute = std::fs::canonicalize(path).map_err(|e| format!("cannot read: {e}"))?;
    let uri = gst::glib::filename_to_uri(&absolute, None)
        .map_err(|e| format!("cannot name as a URI: {e}"))?;
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(60))
        .map_err(|e| format!("GStreamer's discoverer is not available: {e}"))?;
    let info = match discoverer.discover_uri(&uri) {
        Ok(info) => info,
        Err(e) if e.matches(gst::CoreError::MissingPlugin) => {
            return Err(missing(&missing_plugins(path)));
        }
        Err(e) => return Err(reason(&e.to_string())),
    };
    match info.result() {
        gst_pbutils::DiscovererResult::Ok => {}
        gst_pbutils::DiscovererResult::MissingPlugins => {
            let details: Vec<String> = info
                .missing_elements_installer_details()
                .iter()
                .map(|d| d.to_string())
                .collect();
            return Err(missing(&details));
        }
        gst_pbutils::DiscovererResult::Timeout => {
            return Err("reading the file took longer than 60 s".into());
        }
        other => return Err(format!("cannot be read ({other:?})")),
    }
    let videos = info.video_streams();
    if videos.is_empty() {
        return Err("no video or image in it".into());
    }
    for v in &videos {
        let pixels = v.width() as u64 * v.height() as u64;
        if pixels > MAX_PIXELS {
            return Err(format!(
                "its pictures are {}×{}: more than the {} megapixels the job takes (each frame would need gigabytes)",
                v.width(),
                v.height(),
                MAX_PIXELS / 1_000_000
            ));
        }
    }
    let jpeg = videos[0]
        .caps()
        .and_then(|c| c.structure(0).map(|s| s.name() == "image/jpeg"))
        .unwrap_or(false);
    let orientation = if jpeg {
        jpeg_orientation(path)
    } else {
        videos[0].tags().and_then(|t| {
            t.get::<gst::tags::ImageOrientation>()
                .map(|v| v.get().to_string())
        })
    };
    Ok(Probe {
        orientation,
        image: videos.iter().all(|v| v.is_image()),
        duration_ns: info
            .duration()
            .map(gst::ClockTime::nseconds)
            .filter(|&d| d > 0),
        video_streams: videos.len(),
        audio_streams: info.audio_streams().len(),
        other_streams: info.subtitle_streams().len(),
    })
}

/// A JPEG's EXIF orientation as `jpegparse` reads it (decodebin and the discoverer do not
/// pass it on).
fn jpeg_orientation(path: &Path) -> Option<String> {
    let pipeline = gst::parse::launch("filesrc name=src ! jpegparse ! fakesink").ok()?;
    let bin = pipeline.downcast_ref::<gst::Bin>()?;
    bin.by_name("src")?.set_property("location", path);
    let bus = pipeline.bus()?;
    pipeline.set_state(gst::State::Playing).ok()?;
    let mut found = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Tag(t) => {
                if let Some(v) = t.tags().get::<gst::tags::ImageOrientation>() {
                    found = Some(v.get().to_string());
                }
            }
            gst::MessageView::Eos(_) | gst::MessageView::Error(_) => break,
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    found
}

/// What to install, from missing-plugin installer details (`gstreamer|1.0|app|H.265 decoder|…`).
fn missing(details: &[String]) -> String {
    if details.is_empty() {
        return "a GStreamer plugin it needs is not installed".into();
    }
    let what: Vec<String> = details
        .iter()
        .map(|d| {
            let name = d.split('|').nth(3).unwrap_or(d.as_str());
            format!(
                "{name} (install the Debian package {})",
                plan::package_for(d)
            )
        })
        .collect();
    format!("no GStreamer plugin installed for: {}", what.join("; "))
}

/// The missing-plugin reports of decoding `path` (the discoverer's error does not carry them).
fn missing_plugins(path: &Path) -> Vec<String> {
    let run = || -> Option<Vec<String>> {
        let pipeline = gst::parse::launch("filesrc name=src ! decodebin ! fakesink").ok()?;
        let bin = pipeline.downcast_ref::<gst::Bin>()?;
        bin.by_name("src")?.set_property("location", path);
        let bus = pipeline.bus()?;
        let _ = pipeline.set_state(gst::State::Paused);
        let mut details = Vec::new();
        for msg in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
            if let Ok(m) = gst_pbutils::MissingPluginMessage::parse(&msg) {
                details.push(m.installer_detail().to_string());
            }
            match msg.view() {
                gst::MessageView::Error(_) | gst::MessageView::AsyncDone(_) => break,
                _ => {}
            }
        }
        let _ = pipeline.set_state(gst::State::Null);
        Some(details)
    };
    run().unwrap_or_default()
}

/// The discoverer's error in the words a user needs.
fn reason(error: &str) -> String {
    if error.contains("Could not determine type") {
        "not a video or image file (its type is not recognised)".into()
    } else if error.contains("text file") {
        "not a video or image file (it is text)".into()
    } else {
        format!("cannot be read: {error}")
    }
}

/// An MP4/MOV whose media data is there but whose index (`moov`) is not: a recording cut
/// before the camera or phone finished writing it. Nothing can be decoded without the index.
fn mp4_without_index(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    let mut boxes = Vec::new();
    let mut offset = 0u64;
    // Top-level boxes only: size (32-bit, or 64-bit after "size 1"), type.
    while offset + 8 <= length && boxes.len() < 100_000 {
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut header = [0u8; 16];
        let n = file.read(&mut header).ok()?;
        if n < 8 {
            break;
        }
        let kind = String::from_utf8_lossy(&header[4..8]).to_string();
        let size = match u32::from_be_bytes([header[0], header[1], header[2], header[3]]) {
            0 => length - offset,
            1 if n == 16 => u64::from_be_bytes(header[8..16].try_into().ok()?),
            s => s as u64,
        };
        boxes.push(kind);
        if size < 8 {
            break;
        }
        offset = offset.saturating_add(size);
    }
    let has = |k: &str| boxes.iter().any(|b| b == k);
    // HEIF/AVIF images keep their index in 'meta'; fragmented files in 'moof'.
    (has("ftyp") && has("mdat") && !has("moov") && !has("moof") && !has("meta")).then(|| {
        concat!(
            "the MP4 index ('moov') is missing: the recording was cut before it was finished, ",
            "and nothing can be decoded without the index (a repair tool such as untrunc can ",
            "rebuild it from another file of the same camera)"
        )
        .into()
    })
}
