// SPDX-License-Identifier: MIT OR Apache-2.0
//! Anonymizes a video, an image or a folder of them: every face masked, orientation applied,
//! audio kept, timestamps kept. `scripts/anonymize.sh` runs it; docs/anonymize.md describes it.
//!
//! usage: veil-anonymize [OPTIONS] INPUT OUTPUT
//!
//! Exit codes: 0 done; 1 nothing written (unreadable, empty or unsupported input, missing
//! decoder, failed run); 2 usage; 3 the input ended early (cut or damaged): the output holds
//! every frame up to the cut, masked.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use veil_tools::anonymize::plan::{self, Exit};
use veil_tools::anonymize::{self, FileOutcome, Options, Profile};

/// Masks every face in a video, an image, or each of those in a folder.
#[derive(Parser)]
#[command(name = "veil-anonymize", version)]
struct Cli {
    /// Speed against faces found.
    #[arg(long, value_enum, default_value_t = Profile::Privacy)]
    profile: Profile,
    /// Turn the picture upright before faces are searched (and write it so): `auto` follows the
    /// file's orientation metadata; 90, 180, 270 turn clockwise by that much, for a camera
    /// mounted sideways or upside down whose files say nothing.
    #[arg(long, value_enum, default_value_t = plan::Rotation::Auto)]
    rotate: plan::Rotation,
    /// Audio tracks: kept in sync (copied, or re-encoded when the container cannot hold them),
    /// or dropped.
    #[arg(long, value_enum, default_value_t = plan::AudioChoice::Keep)]
    audio: plan::AudioChoice,
    /// Output video codec; `auto`: H.264 (VP9 for WebM, and for odd sizes in Matroska).
    #[arg(long, value_enum, default_value_t = plan::CodecChoice::Auto)]
    codec: plan::CodecChoice,
    /// Folder with centerface.onnx [default: $VEIL_ASSETS/models].
    #[arg(long)]
    models: Option<PathBuf>,
    /// A video, an image (JPEG, PNG) or a folder.
    input: PathBuf,
    /// A .mp4, .mov, .mkv or .webm file for a video; .jpg or .png for an image; a folder for a
    /// folder. Written only when complete.
    output: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let (false, Err(e)) = (cli.input.is_dir(), plan::output_kind(&cli.output)) {
        eprintln!("veil-anonymize: {}: {e}", cli.output.display());
        return ExitCode::from(2);
    }
    let code = match run(&cli) {
        Ok(exit) => exit,
        Err(message) => {
            eprintln!("veil-anonymize: {message}");
            Exit::Failed
        }
    };
    ExitCode::from(code as u8)
}

fn run(cli: &Cli) -> Result<Exit, String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    anonymize::stop_on_signals().map_err(|e| format!("signal handlers: {e}"))?;
    let models = match &cli.models {
        Some(m) => m.clone(),
        None => std::env::var_os("VEIL_ASSETS")
            .map(|a| PathBuf::from(a).join("models"))
            .ok_or("set VEIL_ASSETS or --models (scripts/anonymize.sh does)")?,
    };
    if !models.join("centerface.onnx").is_file() {
        return Err(format!(
            "{}: no centerface.onnx (run scripts/setup.sh)",
            models.display()
        ));
    }
    let options = Options {
        profile: cli.profile,
        rotation: cli.rotate,
        audio: cli.audio,
        codec: cli.codec,
        models,
    };
    let mut report = |line: &str| eprintln!("{line}");
    let input = &cli.input;
    if input.is_dir() {
        if cli.output.exists() && !cli.output.is_dir() {
            return Err(format!(
                "{}: the input is a folder, so the output must be a folder",
                cli.output.display()
            ));
        }
        if anonymize::same_file(input, &cli.output) {
            return Err(
                "the output folder is the input folder: its files would be overwritten".into(),
            );
        }
        std::fs::create_dir_all(&cli.output)
            .map_err(|e| format!("{}: {e}", cli.output.display()))?;
        let outcomes = anonymize::anonymize_folder(input, &cli.output, &options, &mut report)?;
        summarize(&outcomes);
        return Ok(anonymize::folder_exit(&outcomes));
    }
    if !input.exists() {
        return Err(format!("{}: no such file", input.display()));
    }
    if let Some(dir) = cli
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        eprintln!(
            "veil-anonymize: {}: the output's folder {} does not exist",
            cli.output.display(),
            dir.display()
        );
        return Ok(Exit::Usage);
    }
    match anonymize::anonymize_file(input, &cli.output, &options, &mut report) {
        Ok(exit) => {
            println!("wrote {}", cli.output.display());
            Ok(exit)
        }
        Err(e) => Err(format!("{}: {e}", input.display())),
    }
}

fn summarize(outcomes: &[(PathBuf, FileOutcome)]) {
    let (mut done, mut cut, mut failed, mut skipped) = (0, 0, 0, 0);
    println!("summary:");
    for (path, outcome) in outcomes {
        let line = match outcome {
            FileOutcome::Done(Exit::Ok) => {
                done += 1;
                let written = plan::folder_output_name(path);
                if written == *path {
                    "anonymized".to_string()
                } else {
                    format!("anonymized → {}", written.display())
                }
            }
            FileOutcome::Done(_) => {
                cut += 1;
                "anonymized up to where the input ended early".to_string()
            }
            FileOutcome::Failed(reason) => {
                failed += 1;
                format!("FAILED: {reason}")
            }
            FileOutcome::Skipped => {
                skipped += 1;
                "skipped (not an image or video by its name)".to_string()
            }
        };
        println!("  {}: {line}", path.display());
    }
    println!(
        "{} files: {done} anonymized, {cut} ended early, {failed} failed, {skipped} skipped",
        outcomes.len()
    );
}
