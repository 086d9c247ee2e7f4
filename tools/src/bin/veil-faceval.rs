// SPDX-License-Identifier: MIT OR Apache-2.0
//! Evaluates face anonymization on clips composed over conditions and random draws.
//!
//! ```text
//! veil-faceval generate --split tune --draws 2 --frames 30 --out DIR
//! veil-faceval run --split holdout --draws 3 --frames 30 --out DIR \
//!     --job 'veil=scripts/anonymize.sh {input} {output}' \
//!     --job 'deface=deface {input} -o {output}' --report report.json
//! veil-faceval score CLIP.mp4 OUTPUT.mp4
//! ```
//!
//! Every job runs on every clip; the table gives, per condition and overall, the judged face
//! instances, the share leaked (unmasked or re-detected; see `veil_tools::faceval::score`), the
//! over-masked share of the frame away from faces, and frames/s over the job's wall-clock time.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use veil_tools::faceval::conditions::{self, CONDITIONS};
use veil_tools::faceval::run::{self, ClipScore, Totals};
use veil_tools::faceval::sources::Split;

#[derive(Parser)]
#[command(about = "Face-anonymization evaluation over conditions and random draws")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Draw {
    /// Which material: `tune` (for choosing settings) or `holdout` (for reporting figures).
    #[arg(long, default_value = "holdout", value_parser = parse_split)]
    split: Split,
    /// Random draws per condition.
    #[arg(long, default_value_t = 1)]
    draws: u32,
    /// Frames per clip (15 fps).
    #[arg(long, default_value_t = 30)]
    frames: u32,
    /// Comma-separated conditions (default: all).
    #[arg(long, value_delimiter = ',')]
    conditions: Vec<String>,
    /// Where the clips (and outputs) go; clips already there from the same spec are reused.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Render and encode the clips with their ground truth.
    Generate(Draw),
    /// Generate, run every job on every clip, score, and print the table.
    Run {
        #[command(flatten)]
        draw: Draw,
        /// `NAME=COMMAND` with `{input}` and `{output}` placeholders; repeatable.
        #[arg(long = "job", required = true)]
        jobs: Vec<String>,
        /// Write the per-condition figures as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// List every leaked face instance (clip, frame, face, width, why).
        #[arg(long)]
        list_leaks: bool,
    },
    /// Score one output against its clip's ground truth (CLIP.json beside CLIP.mp4).
    Score { clip: PathBuf, output: PathBuf },
}

fn parse_split(s: &str) -> Result<Split, String> {
    Split::parse(s).ok_or_else(|| format!("'{s}' is not a split: use tune or holdout"))
}

fn clips(draw: &Draw) -> anyhow::Result<Vec<PathBuf>> {
    let names: Vec<&str> = if draw.conditions.is_empty() {
        CONDITIONS.iter().map(|c| c.0).collect()
    } else {
        draw.conditions.iter().map(String::as_str).collect()
    };
    if let Some(bad) = names.iter().find(|n| !conditions::is_condition(n)) {
        anyhow::bail!(
            "unknown condition '{bad}'; known: {}",
            CONDITIONS.map(|c| c.0).join(", ")
        );
    }
    std::fs::create_dir_all(&draw.out)
        .with_context(|| format!("cannot create {}", draw.out.display()))?;
    let mut paths = Vec::new();
    for name in names {
        for d in 0..draw.draws {
            let seed = conditions::seed(draw.split, name, d);
            let spec = conditions::draw(name, draw.split, seed, draw.frames);
            let path = draw
                .out
                .join(format!("{}-{name}-{d}.mp4", draw.split.name()));
            run::write_clip(&spec, &path)
                .with_context(|| format!("cannot make {}", path.display()))?;
            eprintln!("clip {}", path.display());
            paths.push(path);
        }
    }
    Ok(paths)
}

fn print_table(job: &str, per: &[(String, Totals)], all: &Totals) {
    println!("\n{job}");
    println!(
        "{:<14} {:>6} {:>7} {:>8} {:>9} {:>10} {:>7}",
        "condition", "judged", "leaked", "leak %", "unmasked", "overmask %", "fps"
    );
    for (name, t) in per
        .iter()
        .chain(std::iter::once(&("all".to_owned(), all.clone())))
    {
        println!(
            "{:<14} {:>6} {:>7} {:>7.2}% {:>9} {:>9.2}% {:>7.2}",
            name,
            t.judged,
            t.leaked,
            t.leak_percent(),
            t.unmasked,
            t.overmask_percent(),
            t.fps()
        );
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    gst::init()?;
    gstveilinference::plugin_register_static()?;
    match cli.command {
        Command::Generate(draw) => {
            let paths = clips(&draw)?;
            eprintln!("{} clips in {}", paths.len(), draw.out.display());
        }
        Command::Score { clip, output } => {
            let s = run::score_clip(&clip, &output, 0.0)?;
            let mut t = Totals::default();
            t.add(&s);
            println!("{}", serde_json::to_string_pretty(&t.to_json())?);
        }
        Command::Run {
            draw,
            jobs,
            report,
            list_leaks,
        } => {
            let paths = clips(&draw)?;
            let mut json = serde_json::Map::new();
            for job in &jobs {
                let (name, command) = job.split_once('=').context("--job takes NAME=COMMAND")?;
                let mut scores: Vec<ClipScore> = Vec::new();
                for clip in &paths {
                    let output = output_path(clip, name);
                    let seconds = run::run_job(command, clip, &output)?;
                    let s = run::score_clip(clip, &output, seconds)?;
                    let mut t = Totals::default();
                    t.add(&s);
                    eprintln!(
                        "{name} {}: leaked {}/{} overmask {:.2}% {:.1} fps",
                        clip.display(),
                        t.leaked,
                        t.judged,
                        t.overmask_percent(),
                        t.fps()
                    );
                    if list_leaks {
                        for f in s.faces.iter().filter(|f| f.leaked()) {
                            eprintln!(
                                "  leak: frame {} face {} width {:.0} px{}{} (β {:.2}, quadrant {:.2})",
                                f.frame,
                                f.id,
                                f.width,
                                if f.unmasked { " unmasked" } else { "" },
                                if f.redetected { " re-detected" } else { "" },
                                f.retained,
                                f.retained_quadrant
                            );
                        }
                    }
                    scores.push(s);
                }
                let (per, all) = run::summarize(&scores);
                print_table(name, &per, &all);
                let mut by_condition = serde_json::Map::new();
                for (c, t) in &per {
                    by_condition.insert(c.clone(), t.to_json());
                }
                json.insert(
                    name.to_owned(),
                    serde_json::json!({"conditions": by_condition, "all": all.to_json()}),
                );
            }
            if let Some(path) = report {
                std::fs::write(&path, serde_json::to_string_pretty(&json)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn output_path(clip: &Path, job: &str) -> PathBuf {
    let stem = clip
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    clip.with_file_name(format!("{stem}.{job}.mp4"))
}
