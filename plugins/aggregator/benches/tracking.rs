// SPDX-License-Identifier: MIT OR Apache-2.0
//! Benchmark: detections/s through tracking + metrics on one core, 50 objects per frame.
//! Run with `cargo bench -p gst-plugin-veilaggregator --bench tracking`.

use std::time::Instant;

use gstveilaggregator::metrics::{AggregatorConfig, Metrics, Observation};
use gstveilaggregator::tracker::{Tracker, TrackerConfig};
use gstveilaggregator::zones::ZoneConfig;

fn main() {
    const OBJECTS: usize = 50;
    const FRAMES: usize = 20_000;
    let zones = ZoneConfig::parse(
        "[[zone]]\nname='left'\npolygon=[[0,0],[0.5,0],[0.5,1],[0,1]]\n\
         [[zone]]\nname='right'\npolygon=[[0.5,0],[1,0],[1,1],[0.5,1]]\n\
         [[line]]\nname='mid'\nfrom=[0.5,0]\nto=[0.5,1]\n",
    )
    .unwrap();
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut metrics = Metrics::new(AggregatorConfig {
        window_ns: 60_000_000_000,
        zones,
        demographics: false,
        k: 5,
        inspection: false,
    });
    // Objects on a grid, each drifting, with a little deterministic jitter and some low scores.
    let mut boxes = vec![[0.0f64; 4]; OBJECTS];
    let mut scores = vec![0.0f64; OBJECTS];
    let mut windows = 0usize;
    let start = Instant::now();
    for f in 0..FRAMES {
        for (i, (b, s)) in boxes.iter_mut().zip(scores.iter_mut()).enumerate() {
            let gx = (i % 10) as f64 / 10.0;
            let gy = (i / 10) as f64 / 5.0;
            let drift = ((f % 2000) as f64 / 2000.0) * 0.08;
            let jitter = (((f * 31 + i * 17) % 7) as f64 - 3.0) * 0.0005;
            let (x, y) = (gx + 0.01 + drift + jitter, gy + 0.01);
            *b = [x, y, x + 0.05, y + 0.15];
            *s = if (f + i) % 11 == 0 { 0.3 } else { 0.8 };
        }
        let (ids, ended) = tracker.update(&boxes, &scores);
        metrics.end_tracks(&ended);
        let obs: Vec<Observation> = ids
            .iter()
            .zip(&boxes)
            .filter_map(|(id, b)| {
                id.map(|track| Observation {
                    track,
                    bbox: *b,
                    frontal: Some(f % 3 == 0),
                    attributes: Vec::new(),
                })
            })
            .collect();
        windows += metrics.frame(f as u64 * 100_000_000, &obs).len();
    }
    let secs = start.elapsed().as_secs_f64();
    let dets = (OBJECTS * FRAMES) as f64;
    println!("tracking + metrics, {OBJECTS} objects/frame, {FRAMES} frames, 1 thread:");
    println!(
        "  {:.0} detections/s ({:.1} µs/frame, {} windows closed)",
        dets / secs,
        secs * 1e6 / FRAMES as f64,
        windows
    );
}
