// SPDX-License-Identifier: MIT OR Apache-2.0
//! What an input file holds, asked of GStreamer's discoverer before the job builds a pipeline:
//! so that an empty, unreadable or undecodable file is refused with its reason (and the package
//! that would decode it) and nothing is written.

use std::path::Path;

use gst_pbutils::prelude::*;

use super::plan;

/// The input as the job needs to know it.
#[derive(Debug, Clone)]
pub struct Probe {
    /// A still image (JPEG, PNG), not a video.
    pub image: bool,
    /// The duration the container declares, if any.
    pub duration_ns: Option<u64>,
    /// The first video stream's orientation metadata turns it by a quarter (width and height
    /// swap when it is applied).
    pub quarter_turn: bool,
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
        Err(e) => return Err(reason(&e.to_string())),
    };
    match info.result() {
        gst_pbutils::DiscovererResult::Ok => {}
        gst_pbutils::DiscovererResult::MissingPlugins => {
            let details = info.missing_elements_installer_details();
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
            return Err(format!(
                "no GStreamer plugin installed for: {}",
                what.join("; ")
            ));
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
    let orientation = videos[0]
        .tags()
        .and_then(|t| t.get::<gst::tags::ImageOrientation>().map(|v| v.get().to_string()))
        .unwrap_or_default();
    Ok(Probe {
        quarter_turn: orientation.ends_with("-90") || orientation.ends_with("-270"),
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
    while offset + 8 <= length && boxes.len() < 64 {
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
    (has("ftyp") && has("mdat") && !has("moov") && !has("moof")).then(|| {
        concat!(
            "the MP4 index ('moov') is missing: the recording was cut before it was finished, ",
            "and nothing can be decoded without the index (a repair tool such as untrunc can ",
            "rebuild it from another file of the same camera)"
        )
        .into()
    })
}
