// SPDX-License-Identifier: MIT OR Apache-2.0
//! The anonymize job (`veil-anonymize`, what `scripts/anonymize.sh` runs) on the kinds of files
//! real users send: every input in `tests/cases/anonymize/` (the folder users' reports were
//! distilled into), and more members of each kind made here from them with GStreamer — another
//! rotation, another odd size, an audio codec MP4 cannot hold, a cut file with its index at the
//! front, garbled data, a missing decoder.
//!
//! Outputs are read back with `ffprobe` (FFmpeg: a reader we did not write) for sizes, codecs,
//! frame counts and durations, and faces are searched in them with CenterFace at 0.5 after
//! turning them upright; each such check has its positive control (the same search finds the
//! faces in the input).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use wait_timeout::ChildExt;

use serde_json::Value;
use veil_tools::assets;

fn case(name: &str) -> PathBuf {
    veil_e2e::repository_root()
        .join("tests/cases/anonymize")
        .join(name)
}

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = veil_e2e::target_dir().join("anonymize-files").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn says(&self, text: &str) -> bool {
        self.stdout.contains(text) || self.stderr.contains(text)
    }
}

/// Longer than any job here takes on 2 cores (the longest, ~20 s) by far.
const JOB_LIMIT: Duration = Duration::from_secs(300);

/// Reads a child's pipe to its end on a thread of its own (so neither pipe fills and blocks it).
fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Runs the job with `args`; `env` adds variables. Fails the test if the job hangs.
fn job_env(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Run {
    let debug = veil_e2e::target_dir().join("debug");
    let mut cmd = Command::new(debug.join("veil-anonymize"));
    cmd.env("GST_PLUGIN_PATH", &debug)
        .env("VEIL_ASSETS", assets::root())
        .args(args.iter().map(|a| a.as_ref()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veil-anonymize runs");
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = match child
        .wait_timeout(JOB_LIMIT)
        .expect("wait for veil-anonymize")
    {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let args: Vec<_> = args.iter().map(|a| a.as_ref().to_owned()).collect();
            panic!("veil-anonymize {args:?} still running after {JOB_LIMIT:?}: it hangs");
        }
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    eprintln!(
        "veil-anonymize exit {}\n{}{}",
        run.code,
        run.stdout,
        run.stderr
            .lines()
            .filter(|l| !l.starts_with("progress"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    run
}

fn job(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Run {
    job_env(args, &[])
}

/// `ffprobe` of a file, frames counted.
fn probe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn streams<'a>(p: &'a Value, kind: &str) -> Vec<&'a Value> {
    p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == kind)
        .collect()
}

fn video(p: &Value) -> &Value {
    let v = streams(p, "video");
    assert_eq!(v.len(), 1, "one video stream: {p}");
    v[0]
}

fn size(p: &Value) -> (u64, u64) {
    let v = video(p);
    (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
}

fn frames(p: &Value) -> u64 {
    video(p)["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap()
}

fn seconds(v: &Value) -> f64 {
    v["duration"].as_str().and_then(|d| d.parse().ok()).unwrap()
}

/// No stream side data turns the picture: it is stored upright.
fn stored_upright(p: &Value) {
    let v = video(p);
    let rotation = v["side_data_list"]
        .as_array()
        .map(|l| l.iter().any(|d| d.get("rotation").is_some()))
        .unwrap_or(false);
    assert!(!rotation, "a rotation flag is left in the output: {v}");
}

/// Faces CenterFace finds at 0.5 over every frame of `path`, turned upright first (by the
/// orientation tag: JPEGs through `jpegparse`, as decodebin drops their EXIF orientation).
fn faces(path: &Path) -> usize {
    veil_e2e::init();
    let jpeg = path.extension().is_some_and(|e| e == "jpg");
    let decode = if jpeg {
        "jpegparse ! jpegdec"
    } else {
        "decodebin"
    };
    let frames = veil_tools::frames::run_pipeline(
        &format!(
            "filesrc location=\"{}\" ! {decode} ! videoconvert ! videoflip video-direction=auto ! videoconvert ! \
             inferfilter model=\"{}\" threshold=0.5",
            path.display(),
            assets::require("models/centerface.onnx").display()
        ),
        |_| {},
    )
    .unwrap();
    frames.iter().map(|f| f.detections.len()).sum()
}

/// The faces of `input` are found (the control) and none is found in `output`.
fn faces_masked(input: &Path, output: &Path) {
    let before = faces(input);
    assert!(before > 0, "control: faces in {}", input.display());
    assert_eq!(faces(output), 0, "faces left in {}", output.display());
}

/// Nothing in `dir` but `keep`: no output of a failed run, no `.part` file.
fn only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "files left in {}", dir.display());
}

/// Runs `gst-launch-1.0` to make an input.
fn make(description: &str) {
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(description.split_whitespace())
        .status()
        .unwrap();
    assert!(status.success(), "gst-launch-1.0 {description}");
}

#[test]
fn a_phone_video_with_a_rotation_flag_comes_out_upright_with_its_faces_masked() {
    let dir = scratch("rotated");
    // The case: coded 640×360, shown 360×640 (rotate 90).
    let out = dir.join("rotated-90.mp4");
    let run = job(&[&case("rotated-90.mp4"), &out]);
    assert_eq!(run.code, 0);
    let p = probe(&out);
    assert_eq!(size(&p), (360, 640));
    assert_eq!(frames(&p), 45);
    stored_upright(&p);
    faces_masked(&case("rotated-90.mp4"), &out);
    // Another member of the kind: stored turned the other way, flagged rotate-270 (FFmpeg
    // writes the display matrix; GStreamer's MP4 muxer writes none).
    let sideways = dir.join("sideways.mp4");
    let input = dir.join("flag-270.mp4");
    ffmpeg_encode(&["-vf", "transpose=2", "-c:v", "libx264", "-an"], &sideways);
    ffmpeg(&[
        &"-i",
        &sideways,
        &"-c",
        &"copy",
        &"-metadata:s:v:0",
        &"rotate=90",
        &input,
    ]);
    assert_eq!(size(&probe(&input)), (360, 640), "stored sideways");
    let out = dir.join("flag-270-out.mp4");
    assert_eq!(job(&[&input, &out]).code, 0);
    let p = probe(&out);
    assert_eq!(size(&p), (640, 360), "shown as the flag says");
    stored_upright(&p);
    faces_masked(&input, &out);
}

#[test]
fn a_sideways_camera_without_metadata_is_turned_by_the_rotate_option() {
    let dir = scratch("sideways");
    let input = dir.join("sideways.mp4");
    make(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! videoflip video-direction=90l ! \
         x264enc ! mp4mux ! filesink location={}",
        case("with-aac-audio.mp4").display(),
        input.display()
    ));
    let out = dir.join("upright.mp4");
    let run = job(&[&"--rotate", &"90", &input, &out]);
    assert_eq!(run.code, 0);
    let p = probe(&out);
    assert_eq!(size(&p), (640, 360), "turned 90° clockwise");
    assert_eq!(frames(&p), 45);
    faces_masked(&case("with-aac-audio.mp4"), &out);
}

#[test]
fn audio_is_kept_in_sync_re_encoded_when_the_container_cannot_hold_it_or_dropped_on_request() {
    let dir = scratch("audio");
    let input = case("with-aac-audio.mp4");
    let out = dir.join("kept.mp4");
    let run = job(&[&input, &out]);
    assert_eq!(run.code, 0);
    assert!(run.says("audio: MPEG-4 AAC copied"), "the job says which");
    let p = probe(&out);
    let audio = streams(&p, "audio");
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0]["codec_name"], "aac");
    assert!((seconds(audio[0]) - 3.008).abs() < 0.05, "{}", audio[0]);
    assert!((seconds(video(&p)) - 3.0).abs() < 0.05);
    assert_eq!(frames(&p), 45);
    faces_masked(&input, &out);
    // Vorbis in Matroska → MP4, which cannot hold Vorbis: re-encoded to AAC, same length.
    let vorbis = dir.join("vorbis.mkv");
    make(&format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! h264parse ! matroskamux name=m ! \
         filesink location={} d.audio_0 ! queue ! avdec_aac ! audioconvert ! vorbisenc ! m.",
        input.display(),
        vorbis.display()
    ));
    let out = dir.join("from-vorbis.mp4");
    let run = job(&[&vorbis, &out]);
    assert_eq!(run.code, 0);
    assert!(run.says("re-encoded to AAC"), "the job says which");
    let p = probe(&out);
    let audio = streams(&p, "audio");
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0]["codec_name"], "aac");
    assert!((seconds(audio[0]) - 3.0).abs() < 0.1, "{}", audio[0]);
    // A subtitle track (mov_text, sparse): dropped and said, the job does not stall on it.
    let srt = dir.join("cues.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,000 --> 00:00:00,500\nAlice Smith\n\n2\n00:00:02,000 --> 00:00:02,500\nleaves\n",
    )
    .unwrap();
    let subs = dir.join("subs.mp4");
    ffmpeg(&[
        &"-i",
        &input,
        &"-i",
        &srt,
        &"-map",
        &"0",
        &"-map",
        &"1",
        &"-c:v",
        &"copy",
        &"-c:a",
        &"copy",
        &"-c:s",
        &"mov_text",
        &subs,
    ]);
    let out = dir.join("from-subs.mp4");
    let run = job(&[&subs, &out]);
    assert_eq!(run.code, 0);
    assert!(run.says("dropped a"), "{}", run.stderr);
    let p = probe(&out);
    assert!(streams(&p, "subtitle").is_empty());
    assert_eq!(streams(&p, "audio").len(), 1, "the audio is still kept");
    assert_eq!(frames(&p), 45);
    // Dropped only when asked, and said.
    let out = dir.join("silent.mp4");
    let run = job(&[&"--audio", &"drop", &input, &out]);
    assert_eq!(run.code, 0);
    assert!(run.says("dropped (--audio drop)"));
    assert!(streams(&probe(&out), "audio").is_empty());
}

#[test]
fn odd_and_tiny_sizes_are_written_without_a_zero_byte_file() {
    let dir = scratch("odd");
    let input = case("odd-853x479.webm");
    // Matroska/WebM: the exact size (VP9).
    for name in ["odd.webm", "odd.mkv"] {
        let out = dir.join(name);
        assert_eq!(job(&[&input, &out]).code, 0);
        let p = probe(&out);
        assert_eq!(size(&p), (853, 479), "{name}");
        assert_eq!(frames(&p), 45);
        faces_masked(&input, &out);
    }
    // MP4 (H.264 4:2:0 codes even sizes only): one black column and row added, and said.
    let out = dir.join("odd.mp4");
    let run = job(&[&input, &out]);
    assert_eq!(run.code, 0);
    assert!(run.says("854×480"), "the job says what it did");
    let p = probe(&out);
    assert_eq!(size(&p), (854, 480));
    assert_eq!(video(&p)["pix_fmt"], "yuv420p");
    faces_masked(&input, &out);
    // Another member: 97×55.
    let tiny = dir.join("tiny.mkv");
    make(&format!(
        "videotestsrc num-buffers=10 ! video/x-raw,width=97,height=55,framerate=10/1 ! \
         x264enc ! matroskamux ! filesink location={}",
        tiny.display()
    ));
    for (name, want) in [("tiny-out.mkv", (97, 55)), ("tiny-out.mp4", (98, 56))] {
        let out = dir.join(name);
        assert_eq!(job(&[&tiny, &out]).code, 0);
        let p = probe(&out);
        assert_eq!(size(&p), want, "{name}");
        assert_eq!(frames(&p), 10);
    }
}

#[test]
fn variable_frame_rates_keep_every_frame_and_the_duration() {
    let dir = scratch("vfr");
    let input = case("vfr-no-nominal-rate.mp4");
    let out = dir.join("vfr.mp4");
    let run = job(&[&input, &out]);
    assert_eq!(run.code, 0);
    let p = probe(&out);
    let want = probe(&input);
    assert_eq!(frames(&p), frames(&want));
    assert!(
        (seconds(video(&p)) - 6.0).abs() < 0.05,
        "duration {}",
        video(&p)
    );
    faces_masked(&input, &out);
}

#[test]
fn images_keep_format_size_and_channels_with_exif_orientation_applied() {
    let dir = scratch("images");
    // EXIF orientation 6 (the case, square), faces masked.
    let out = dir.join("photo.jpg");
    assert_eq!(job(&[&case("photo-exif-rotate-90.jpg"), &out]).code, 0);
    let p = probe(&out);
    assert_eq!(video(&p)["codec_name"], "mjpeg");
    assert_eq!(size(&p), (512, 512));
    faces_masked(&case("photo-exif-rotate-90.jpg"), &out);
    // Another member: a 640×360 photo stored sideways (360×640) with EXIF orientation.
    let sideways = dir.join("sideways.jpg");
    make(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoflip video-direction=90l ! \
         jpegenc ! taginject tags=image-orientation=rotate-90 ! jifmux ! filesink location={}",
        case("cutout-rgba.png").display(),
        sideways.display()
    ));
    let out = dir.join("upright.jpg");
    assert_eq!(job(&[&sideways, &out]).code, 0);
    assert_eq!(size(&probe(&out)), (640, 360), "stored upright");
    faces_masked(&sideways, &out);
    // PNG with alpha: an RGBA PNG out, the same size.
    let out = dir.join("cutout.png");
    let run = job(&[&case("cutout-rgba.png"), &out]);
    assert_eq!(run.code, 0);
    assert!(run.says("alpha kept"));
    let p = probe(&out);
    assert_eq!(video(&p)["pix_fmt"], "rgba");
    assert_eq!(size(&p), (640, 360));
    faces_masked(&case("cutout-rgba.png"), &out);
    // Grey PNG stays grey; 16-bit grey is refused by name, nothing written.
    let grey = dir.join("grey.png");
    let grey16 = dir.join("grey16.png");
    for (file, format) in [(&grey, "GRAY8"), (&grey16, "GRAY16_BE")] {
        make(&format!(
            "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format={format} ! pngenc ! \
             filesink location={}",
            case("cutout-rgba.png").display(),
            file.display()
        ));
    }
    let out = dir.join("grey-out.png");
    assert_eq!(job(&[&grey, &out]).code, 0);
    assert_eq!(video(&probe(&out))["pix_fmt"], "gray");
    faces_masked(&grey, &out);
    let run = job(&[&grey16, &dir.join("grey16-out.png")]);
    assert_eq!(run.code, 1);
    assert!(
        run.says("grey16.png") && run.says("16-bit"),
        "{}",
        run.stderr
    );
    assert!(!dir.join("grey16-out.png").exists());
    assert!(!dir.join("grey16-out.png.part").exists());
}

#[test]
fn a_folder_is_done_file_by_file_with_a_summary() {
    let dir = scratch("folder");
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    for f in ["a-640x480.jpg", "b-1280x720.jpg", "c-300x400.png"] {
        std::fs::copy(case("images-folder").join(f), input.join(f)).unwrap();
    }
    std::fs::copy(case("rotated-90.mp4"), input.join("sub/clip.mp4")).unwrap();
    std::fs::copy(case("zero-bytes.mp4"), input.join("sub/empty.mp4")).unwrap();
    std::fs::write(input.join("notes.txt"), "not media").unwrap();
    let out = dir.join("out");
    let run = job(&[&input, &out]);
    assert_eq!(run.code, 1, "one file failed");
    assert!(
        run.says("6 files: 4 anonymized, 0 ended early, 1 failed, 1 skipped"),
        "{}",
        run.stdout
    );
    assert!(run.says("sub/empty.mp4: FAILED: the file is empty"));
    for f in ["a-640x480.jpg", "b-1280x720.jpg", "c-300x400.png"] {
        let p = probe(&out.join(f));
        assert_eq!(size(&p), size(&probe(&input.join(f))), "{f}: same size out");
        faces_masked(&input.join(f), &out.join(f));
    }
    assert_eq!(size(&probe(&out.join("sub/clip.mp4"))), (360, 640));
    only(&out.join("sub"), &["clip.mp4"]);
    only(
        &out,
        &["a-640x480.jpg", "b-1280x720.jpg", "c-300x400.png", "sub"],
    );
}

/// Runs FFmpeg (quiet, overwriting) with `args`.
fn ffmpeg(args: &[&dyn AsRef<std::ffi::OsStr>]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args.iter().map(|a| a.as_ref()))
        .status()
        .unwrap();
    let args: Vec<_> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    assert!(status.success(), "ffmpeg {args:?}");
}

/// Encodes the case clip with FFmpeg (`args` between input and output) into `out`.
fn ffmpeg_encode(args: &[&str], out: &Path) {
    let input = case("with-aac-audio.mp4");
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"-i", &input];
    all.extend(args.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    all.push(&out);
    ffmpeg(&all);
}

#[test]
fn hdr_ten_bit_hevc_av1_vp9_and_grey_ffv1_come_out_as_8_bit_420_h264_masked() {
    let dir = scratch("codecs");
    // More members of the kind, made by FFmpeg: HLG HEVC 10-bit, AV1 10-bit, VP9 4:4:4.
    let hlg = dir.join("hlg-main10.mkv");
    ffmpeg_encode(
        &[
            "-c:v",
            "libx265",
            "-pix_fmt",
            "yuv420p10le",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "arib-std-b67",
            "-colorspace",
            "bt2020nc",
            "-x265-params",
            "log-level=error",
            "-an",
        ],
        &hlg,
    );
    let av1 = dir.join("av1-10bit.mkv");
    ffmpeg_encode(
        &[
            "-c:v",
            "libsvtav1",
            "-preset",
            "12",
            "-pix_fmt",
            "yuv420p10le",
            "-an",
        ],
        &av1,
    );
    let h422 = dir.join("h264-422.mp4");
    ffmpeg_encode(&["-c:v", "libx264", "-pix_fmt", "yuv422p", "-an"], &h422);
    let vp9 = dir.join("vp9-444.webm");
    ffmpeg_encode(
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-pix_fmt",
            "yuv444p",
            "-an",
        ],
        &vp9,
    );
    for (input, count) in [
        (case("hevc-main10-hdr-pq.mp4"), 30),
        (case("ir-gray8-ffv1.mkv"), 30),
        (hlg, 45),
        (av1, 45),
        (h422, 45),
        (vp9, 45),
    ] {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let out = dir.join(format!("{name}.mp4"));
        assert_eq!(job(&[&input, &out]).code, 0, "{name}");
        let p = probe(&out);
        let v = video(&p);
        assert_eq!(v["codec_name"], "h264", "{name}");
        assert_eq!(v["pix_fmt"], "yuv420p", "{name}");
        assert_eq!(size(&p), (640, 360));
        assert_eq!(frames(&p), count, "{name}");
        faces_masked(&input, &out);
    }
}

#[test]
fn a_missing_decoder_is_named_with_its_package_and_nothing_is_written() {
    let dir = scratch("missing");
    let out = dir.join("out.mp4");
    // Both HEVC decoders ranked out of reach, as on a system without them.
    let run = job_env(
        &[&case("hevc-main10-hdr-pq.mp4"), &out],
        &[(
            "GST_PLUGIN_FEATURE_RANK",
            "avdec_h265:NONE,libde265dec:NONE",
        )],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.says("hevc-main10-hdr-pq.mp4") && run.says("gstreamer1.0-libav"),
        "{}",
        run.stderr
    );
    only(&dir, &[]);
    // The control: with the decoders, the same file works.
    assert_eq!(job(&[&case("hevc-main10-hdr-pq.mp4"), &out]).code, 0);
}

#[test]
fn bad_files_are_refused_by_name_and_leave_nothing() {
    let dir = scratch("bad");
    let text = dir.join("notes.mp4");
    std::fs::write(&text, "this is not a video\n".repeat(50)).unwrap();
    for (input, reason) in [
        (case("zero-bytes.mp4"), "empty"),
        (case("truncated-no-moov.mp4"), "index ('moov') is missing"),
        (text.clone(), "not a video or image"),
        (dir.join("absent.mp4"), "no such file"),
    ] {
        let out = dir.join("out.mp4");
        let run = job(&[&input, &out]);
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(run.code, 1, "{name}");
        assert!(
            run.says(&name) && run.says(reason),
            "{name}: {}",
            run.stderr
        );
        only(&dir, &["notes.mp4"]);
    }
    // The output is the input, spelt another way: refused, the input untouched.
    let same = dir.join("same.mp4");
    std::fs::copy(case("with-aac-audio.mp4"), &same).unwrap();
    let before = std::fs::read(&same).unwrap();
    let run = job(&[&same, &dir.join(".").join("same.mp4")]);
    assert_eq!(run.code, 1);
    assert!(run.says("overwrite"), "{}", run.stderr);
    assert_eq!(std::fs::read(&same).unwrap(), before);
    // An output the job cannot write, or in a folder that does not exist: usage errors
    // naming the output.
    let run = job(&[&same, &dir.join("out.avi")]);
    assert_eq!(run.code, 2);
    assert!(run.says("out.avi"), "{}", run.stderr);
    let run = job(&[&same, &dir.join("missing").join("out.mp4")]);
    assert_eq!(run.code, 2);
    assert!(run.says("output's folder"), "{}", run.stderr);
    // The preview without a display says so (instead of GStreamer's sinks crashing).
    let out = Command::new(veil_e2e::repository_root().join("scripts/anonymize.sh"))
        .args([&same.to_string_lossy(), "--preview"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("VEIL_SKIP_BUILD", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a display"));
}

#[test]
fn names_places_and_chapters_in_the_input_are_not_copied() {
    let dir = scratch("metadata");
    let meta = dir.join("meta.txt");
    std::fs::write(
        &meta,
        ";FFMETADATA1\ntitle=Alice Smith at home\nlocation=+51.5012-000.1419/\n\
         [CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=Alice Smith arrives\n",
    )
    .unwrap();
    let input = dir.join("tagged.mkv");
    ffmpeg(&[
        &"-i",
        &case("with-aac-audio.mp4"),
        &"-i",
        &meta,
        &"-map",
        &"0",
        &"-map_metadata",
        &"1",
        &"-map_chapters",
        &"1",
        &"-c",
        &"copy",
        &input,
    ]);
    let secret = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).contains("Alice");
    assert!(secret(&input), "control: the input carries the names");
    for name in ["out.mkv", "out.mp4"] {
        let out = dir.join(name);
        assert_eq!(job(&[&input, &out]).code, 0);
        assert!(!secret(&out), "{name}: a name was copied");
        assert_eq!(
            streams(&probe(&out), "audio").len(),
            1,
            "{name}: the audio is kept"
        );
    }
}

#[test]
fn a_cut_recording_is_processed_to_the_cut_and_says_so_with_exit_code_3() {
    let dir = scratch("cut");
    // Index at the front (as cameras that stream to disk write them), then cut in half.
    let whole = dir.join("whole.mp4");
    make(&format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! h264parse ! \
         mp4mux faststart=true name=m ! filesink location={} d.audio_0 ! queue ! aacparse ! m.",
        case("with-aac-audio.mp4").display(),
        whole.display()
    ));
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.join("out.mp4");
    let run = job(&[&cut, &out]);
    assert_eq!(run.code, 3);
    assert!(run.says("input ended early at 0:00:01."), "{}", run.stderr);
    let p = probe(&out);
    let n = frames(&p);
    assert!(n > 5 && n < 45, "the frames up to the cut: {n}");
    faces_masked(&cut, &out);
    // The controls: the whole file exits 0, and so does a whole file whose audio rightly
    // outlasts its video (5 s of sound under 3 s of picture).
    assert_eq!(job(&[&whole, &dir.join("whole-out.mp4")]).code, 0);
    let long_audio = dir.join("long-audio.mp4");
    ffmpeg_encode(
        &[
            "-f", "lavfi", "-t", "5", "-i", "sine", "-map", "0:v", "-map", "1:a",
        ]
        .into_iter()
        .chain(["-c:v", "copy", "-c:a", "aac"])
        .collect::<Vec<_>>(),
        &long_audio,
    );
    let out = dir.join("long-audio-out.mp4");
    assert_eq!(job(&[&long_audio, &out]).code, 0);
    let audio = seconds(streams(&probe(&out), "audio")[0]);
    assert!((audio - 5.0).abs() < 0.05, "all the sound is kept: {audio}");
}

#[test]
fn garbled_frames_never_pass_a_recognisable_face() {
    let dir = scratch("garbled");
    let input = case("with-aac-audio.mp4");
    let mut bytes = std::fs::read(&input).unwrap();
    // Damage the coded frames (inside 'mdat', past its first quarter): every 40th byte of a
    // third of it.
    let mdat = bytes
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an mdat box");
    let (start, end) = (
        mdat + (bytes.len() - mdat) / 4,
        mdat + (bytes.len() - mdat) * 7 / 12,
    );
    for i in (start..end).step_by(40) {
        bytes[i] ^= 0x5a;
    }
    let garbled = dir.join("garbled.mp4");
    std::fs::write(&garbled, &bytes).unwrap();
    let out = dir.join("out.mp4");
    let run = job(&[&garbled, &out]);
    assert!(run.code == 0 || run.code == 3, "exit {}", run.code);
    faces_masked(&input, &out);
}
