// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the anonymize job writes for an input, decided before any pipeline runs: the output's
//! container and codec, how odd sizes and variable frame rates are carried, what each extra
//! stream becomes, and the exit codes. Pure logic; the GStreamer glue is in `pipeline`.

use std::path::Path;

/// Exit codes of `veil-anonymize` (and `scripts/anonymize.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every frame written, faces masked.
    Ok = 0,
    /// Input ended early (cut or damaged): the output holds every frame up to the cut, masked.
    EndedEarly = 3,
    /// Nothing usable: unreadable, empty or unsupported input, a missing decoder, a failed run.
    /// No output is left behind.
    Failed = 1,
    /// The command line cannot work: options, an output name or folder the job cannot write.
    Usage = 2,
}

/// How the picture is turned upright before the face model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rotation {
    /// As the file's orientation metadata says (MP4/MOV display matrix, Matroska/EXIF tags).
    Auto,
    /// Leave the picture as stored (ignore the metadata).
    #[value(name = "0")]
    None,
    /// Turn 90° clockwise (a camera mounted turned 90° counter-clockwise).
    #[value(name = "90")]
    Clockwise,
    #[value(name = "180")]
    Half,
    /// Turn 90° counter-clockwise.
    #[value(name = "270")]
    CounterClockwise,
}

impl Rotation {
    /// The `videoflip` `video-direction` that does it, given the file's `image-orientation`
    /// tag. The direction is set, not left to `videoflip`'s `auto`: decodebin does not pass a
    /// JPEG's EXIF orientation on to it.
    pub fn video_direction(self, tag: Option<&str>) -> &'static str {
        match self {
            Rotation::Auto => direction_for_tag(tag),
            Rotation::None => "identity",
            Rotation::Clockwise => "90r",
            Rotation::Half => "180",
            Rotation::CounterClockwise => "90l",
        }
    }
}

/// The `videoflip` `video-direction` that shows a picture tagged with `image-orientation` the
/// way the tag says (GStreamer's `gst_video_orientation_from_tag` mapping).
pub fn direction_for_tag(tag: Option<&str>) -> &'static str {
    match tag.unwrap_or("rotate-0") {
        "rotate-90" => "90r",
        "rotate-180" => "180",
        "rotate-270" => "90l",
        "flip-rotate-0" => "horiz",
        "flip-rotate-90" => "ul-lr",
        "flip-rotate-180" => "vert",
        "flip-rotate-270" => "ur-ll",
        _ => "identity",
    }
}

/// Whether a `video-direction` swaps width and height.
pub fn swaps_sides(direction: &str) -> bool {
    matches!(direction, "90r" | "90l" | "ul-lr" | "ur-ll")
}

/// What happens to audio tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioChoice {
    /// Kept in sync: copied when the output container holds its codec, re-encoded otherwise.
    Keep,
    /// Left out.
    Drop,
}

/// The output video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecChoice {
    /// H.264 (8-bit 4:2:0, plays everywhere) in MP4, MOV and Matroska; VP9 in WebM, and in
    /// Matroska for odd frame sizes, which 4:2:0 H.264 cannot hold.
    Auto,
    H264,
    Vp9,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Vp9,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Mov,
    Matroska,
    WebM,
}

impl Container {
    pub fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4mux",
            Container::Mov => "qtmux",
            Container::Matroska => "matroskamux",
            Container::WebM => "webmmux",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Container::Mp4 => "MP4",
            Container::Mov => "QuickTime",
            Container::Matroska => "Matroska",
            Container::WebM => "WebM",
        }
    }
    /// The encoder used for an audio track the container cannot hold as it is.
    pub fn audio_encoder(self) -> (&'static str, &'static str) {
        match self {
            Container::Mp4 | Container::Mov => ("avenc_aac", "AAC"),
            Container::Matroska | Container::WebM => ("opusenc", "Opus"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    pub fn encoder(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpegenc quality=95",
            ImageFormat::Png => "pngenc",
        }
    }
}

/// What an output file name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Video(Container),
    Image(ImageFormat),
}

const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mts", "m2ts", "ts", "mpg", "mpeg", "flv", "3gp",
    "wmv", "ogv", "y4m",
];
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The output kind an output file name asks for, by its extension.
///
/// Errors: an extension the job cannot write, with the ones it can.
pub fn output_kind(path: &Path) -> Result<OutputKind, String> {
    Ok(match extension(path).as_str() {
        "mp4" | "m4v" => OutputKind::Video(Container::Mp4),
        "mov" => OutputKind::Video(Container::Mov),
        "mkv" => OutputKind::Video(Container::Matroska),
        "webm" => OutputKind::Video(Container::WebM),
        "jpg" | "jpeg" => OutputKind::Image(ImageFormat::Jpeg),
        "png" => OutputKind::Image(ImageFormat::Png),
        other => {
            return Err(format!(
                "cannot write '.{other}' files: name the output .mp4, .mov, .mkv or .webm (video), .jpg or .png (image)"
            ));
        }
    })
}

/// What a file in a folder is, by its name: a video, an image, or something the job skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderEntry {
    Video,
    Image,
    Skip,
}

pub fn folder_entry(path: &Path) -> FolderEntry {
    let ext = extension(path);
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    if hidden {
        FolderEntry::Skip
    } else if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
        FolderEntry::Video
    } else if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        FolderEntry::Image
    } else {
        FolderEntry::Skip
    }
}

/// The output name of a folder entry: images keep their name; videos keep it when the job can
/// write their container, and get `.mp4` added otherwise (`clip.avi` → `clip.avi.mp4`, so it
/// cannot clash with a `clip.mp4` beside it).
pub fn folder_output_name(name: &Path) -> std::path::PathBuf {
    match folder_entry(name) {
        FolderEntry::Video if output_kind(name).is_err() => {
            let mut n = name.as_os_str().to_owned();
            n.push(".mp4");
            n.into()
        }
        _ => name.to_path_buf(),
    }
}

/// How the video track is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPlan {
    pub codec: VideoCodec,
    /// Add a column/row on the right/bottom (black, outside the picture) to reach an even size:
    /// 4:2:0 H.264 cannot code odd sizes at all (its cropping works in steps of two pixels).
    pub pad: (u32, u32),
    /// Write timestamps as they are, without a nominal frame rate (variable or unknown rate).
    pub variable_rate: bool,
    /// Lines for the user about what was chosen.
    pub notes: Vec<String>,
}

/// A frame rate a file can really have; demuxers report `0/1` for "unknown" and some report a
/// nanosecond timescale (1000000000/1) for streams without a constant rate.
pub fn nominal_rate(numerator: i32, denominator: i32) -> Option<f64> {
    if numerator <= 0 || denominator <= 0 {
        return None;
    }
    let fps = numerator as f64 / denominator as f64;
    (0.5..=300.0).contains(&fps).then_some(fps)
}

/// Decides codec, padding and timing for a decoded `width`×`height` stream at the caps' rate.
///
/// Errors: a codec the container cannot hold (H.264 in WebM).
pub fn plan_video(
    width: u32,
    height: u32,
    rate: (i32, i32),
    container: Container,
    choice: CodecChoice,
) -> Result<VideoPlan, String> {
    let odd = width % 2 == 1 || height % 2 == 1;
    let codec = match (choice, container) {
        (CodecChoice::H264, Container::WebM) => {
            return Err("WebM cannot hold H.264: use --codec vp9 or a .mp4/.mkv output".into());
        }
        (CodecChoice::H264, _) => VideoCodec::H264,
        (CodecChoice::Vp9, Container::Mp4 | Container::Mov) => {
            return Err(
                "VP9 is written to .webm or .mkv outputs only (this GStreamer's MP4 muxer fails on it)"
                    .into(),
            );
        }
        (CodecChoice::Vp9, _) | (CodecChoice::Auto, Container::WebM) => VideoCodec::Vp9,
        (CodecChoice::Auto, Container::Matroska) if odd => VideoCodec::Vp9,
        (CodecChoice::Auto, _) => VideoCodec::H264,
    };
    let mut notes = Vec::new();
    let pad = if codec == VideoCodec::H264 && odd {
        let pad = (width % 2, height % 2);
        notes.push(format!(
            "{width}×{height} is odd: 4:2:0 H.264 codes even sizes only, so the output is {}×{} \
             (a black column/row added on the right/bottom; masks are not cut). \
             Write .mkv or .webm to keep {width}×{height} exactly (VP9).",
            width + pad.0,
            height + pad.1
        ));
        pad
    } else {
        (0, 0)
    };
    let variable_rate = nominal_rate(rate.0, rate.1).is_none();
    if variable_rate {
        notes.push(
            "no constant frame rate: every frame is written with its own timestamp (variable rate)"
                .into(),
        );
    }
    Ok(VideoPlan {
        codec,
        pad,
        variable_rate,
        notes,
    })
}

/// Whether the processed stream stopped short of the duration the container declared: more
/// than half a second, or 2% of the duration, whichever is larger, is missing.
pub fn ended_early(processed_ns: u64, declared_ns: Option<u64>) -> bool {
    let Some(declared) = declared_ns else {
        return false;
    };
    let tolerance = (declared / 50).max(500_000_000);
    processed_ns.saturating_add(tolerance) < declared
}

/// `h:mm:ss.mmm` for messages.
pub fn clock(ns: u64) -> String {
    let ms = ns / 1_000_000;
    format!(
        "{}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The Debian package that holds the decoder or demuxer for a media type named in a missing-
/// plugin report (`gst-pbutils` installer detail `…|decoder-video/x-h265, …`), from which
/// packages GStreamer 1.22 on Debian 12 ships each.
pub fn package_for(installer_detail: &str) -> &'static str {
    let kind = installer_detail
        .rsplit('|')
        .next()
        .unwrap_or(installer_detail);
    let media = kind
        .split_once('-')
        .map(|(_, m)| m)
        .unwrap_or(kind)
        .split(',')
        .next()
        .unwrap_or("")
        .trim();
    match media {
        "video/x-vp8" | "video/x-vp9" | "image/jpeg" | "image/png" | "video/quicktime"
        | "video/x-matroska" | "video/webm" | "video/x-msvideo" | "video/x-flv"
        | "audio/x-flac" => "gstreamer1.0-plugins-good",
        "video/x-av1" | "video/mpegts" => "gstreamer1.0-plugins-bad",
        "audio/x-vorbis" | "audio/x-opus" | "video/x-theora" | "application/ogg" => {
            "gstreamer1.0-plugins-base"
        }
        // H.264, H.265, MPEG-2/4, FFV1, ProRes, AAC, AC-3 and most others: libav's decoders.
        _ => "gstreamer1.0-libav",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_choose_container_or_image_format() {
        assert_eq!(
            output_kind(Path::new("a/b.MP4")),
            Ok(OutputKind::Video(Container::Mp4))
        );
        assert_eq!(
            output_kind(Path::new("x.webm")),
            Ok(OutputKind::Video(Container::WebM))
        );
        assert_eq!(
            output_kind(Path::new("x.jpeg")),
            Ok(OutputKind::Image(ImageFormat::Jpeg))
        );
        let err = output_kind(Path::new("x.avi")).unwrap_err();
        assert!(err.contains(".avi") && err.contains(".mp4"), "{err}");
        assert!(output_kind(Path::new("noext")).is_err());
    }

    #[test]
    fn folder_entries_by_name() {
        assert_eq!(folder_entry(Path::new("a.JPG")), FolderEntry::Image);
        assert_eq!(folder_entry(Path::new("clip.mts")), FolderEntry::Video);
        assert_eq!(folder_entry(Path::new("notes.txt")), FolderEntry::Skip);
        assert_eq!(folder_entry(Path::new(".hidden.mp4")), FolderEntry::Skip);
        assert_eq!(
            folder_output_name(Path::new("clip.avi")),
            Path::new("clip.avi.mp4")
        );
        assert_eq!(
            folder_output_name(Path::new("clip.webm")),
            Path::new("clip.webm")
        );
        assert_eq!(folder_output_name(Path::new("a.png")), Path::new("a.png"));
    }

    #[test]
    fn odd_sizes_pad_for_h264_and_stay_exact_in_vp9() {
        let mp4 = plan_video(853, 479, (15, 1), Container::Mp4, CodecChoice::Auto).unwrap();
        assert_eq!((mp4.codec, mp4.pad), (VideoCodec::H264, (1, 1)));
        assert!(mp4.notes[0].contains("854×480"), "{:?}", mp4.notes);
        let mkv = plan_video(853, 479, (15, 1), Container::Matroska, CodecChoice::Auto).unwrap();
        assert_eq!((mkv.codec, mkv.pad), (VideoCodec::Vp9, (0, 0)));
        let webm = plan_video(853, 480, (15, 1), Container::WebM, CodecChoice::Auto).unwrap();
        assert_eq!((webm.codec, webm.pad), (VideoCodec::Vp9, (0, 0)));
        let even = plan_video(1280, 720, (30, 1), Container::Matroska, CodecChoice::Auto).unwrap();
        assert_eq!((even.codec, even.pad), (VideoCodec::H264, (0, 0)));
        assert!(even.notes.is_empty());
        assert!(plan_video(640, 360, (30, 1), Container::WebM, CodecChoice::H264).is_err());
        assert!(plan_video(640, 360, (30, 1), Container::Mp4, CodecChoice::Vp9).is_err());
    }

    #[test]
    fn variable_and_unknown_rates_keep_their_timestamps() {
        for rate in [(0, 1), (1_000_000_000, 1), (30, 0)] {
            let plan = plan_video(640, 360, rate, Container::Mp4, CodecChoice::Auto).unwrap();
            assert!(plan.variable_rate, "{rate:?}");
        }
        for rate in [(30000, 1001), (5, 1), (60, 1)] {
            assert!(
                !plan_video(640, 360, rate, Container::Mp4, CodecChoice::Auto)
                    .unwrap()
                    .variable_rate
            );
        }
    }

    #[test]
    fn a_stream_that_stops_short_of_its_declared_duration_ended_early() {
        let s = 1_000_000_000;
        assert!(!ended_early(6 * s, Some(6 * s)));
        assert!(!ended_early(5_800_000_000, Some(6 * s)), "within tolerance");
        assert!(ended_early(3 * s, Some(6 * s)));
        assert!(
            !ended_early(3 * s, None),
            "no declared duration: cannot tell"
        );
        assert!(ended_early(100 * s, Some(200 * s)));
        assert!(!ended_early(197 * s, Some(200 * s)), "2% of a long file");
    }

    #[test]
    fn missing_decoders_name_their_package() {
        let hevc = "gstreamer|1.0|gst-discoverer|H.265 (Main 10 Profile) decoder|decoder-video/x-h265, profile=(string)main-10";
        assert_eq!(package_for(hevc), "gstreamer1.0-libav");
        assert_eq!(
            package_for("gstreamer|1.0|x|VP9 decoder|decoder-video/x-vp9"),
            "gstreamer1.0-plugins-good"
        );
        assert_eq!(
            package_for("gstreamer|1.0|x|AV1 decoder|decoder-video/x-av1"),
            "gstreamer1.0-plugins-bad"
        );
    }

    #[test]
    fn orientation_tags_map_to_the_direction_that_undoes_them() {
        assert_eq!(Rotation::Auto.video_direction(Some("rotate-90")), "90r");
        assert_eq!(Rotation::Auto.video_direction(Some("rotate-270")), "90l");
        assert_eq!(Rotation::Auto.video_direction(None), "identity");
        assert_eq!(
            Rotation::Auto.video_direction(Some("flip-rotate-90")),
            "ul-lr"
        );
        // An explicit rotation wins over the tag.
        assert_eq!(Rotation::Half.video_direction(Some("rotate-90")), "180");
        assert_eq!(
            Rotation::None.video_direction(Some("rotate-90")),
            "identity"
        );
        assert!(swaps_sides("90l") && swaps_sides("ur-ll") && !swaps_sides("180"));
    }

    #[test]
    fn clock_format() {
        assert_eq!(clock(3_723_004_000_000), "1:02:03.004");
    }
}
