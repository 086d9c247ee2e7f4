// SPDX-License-Identifier: MIT OR Apache-2.0
//! NanoDet (GFL head): per-level class score maps and distance distributions.
//!
//! For each stride level there is a score output `[1, N, C]` (sigmoid already applied) and a
//! box output `[1, N, 4·B]`: for each side (left, top, right, bottom) B bins whose softmax
//! expectation, times the stride, is the distance from the cell centre `((col, row) + 0.5)·stride`.
//! Levels are recognised by shape, so output order and names do not matter: N = (S/stride)² for a
//! square input of side S.

use super::{DecodeError, OutputSpec, OutputTensor, RawDetection, mismatch};

const NAME: &str = "nanodet";

/// Score and box outputs paired by cell count, ordered from the finest level.
fn levels(shapes: &[(&str, &[i64])]) -> Result<Vec<(usize, usize, usize)>, DecodeError> {
    if shapes.is_empty() || !shapes.len().is_multiple_of(2) {
        return Err(mismatch(
            NAME,
            format!(
                "expected score/box output pairs, got {} outputs",
                shapes.len()
            ),
        ));
    }
    for (name, shape) in shapes {
        if shape.len() != 3 || shape[1] <= 0 || shape[2] <= 0 {
            return Err(mismatch(
                NAME,
                format!("output '{name}' has shape {shape:?}, expected [1, N, C]"),
            ));
        }
    }
    // Box outputs have 4·bins channels, shared by half of the outputs. Class counts can be
    // multiples of 4 too (COCO's 80), so among such candidates prefer the usual bin counts
    // (reg_max + 1 between 5 and 17).
    let mut candidates: Vec<i64> = shapes
        .iter()
        .map(|(_, s)| s[2])
        .filter(|c| {
            c % 4 == 0 && shapes.iter().filter(|(_, s)| s[2] == *c).count() == shapes.len() / 2
        })
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    if candidates.len() > 1 {
        candidates.retain(|c| (5..=17).contains(&(c / 4)));
    }
    let [box_ch] = candidates[..] else {
        return Err(mismatch(
            NAME,
            "cannot tell the box outputs (4·bins channels) from the score outputs",
        ));
    };
    let mut pairs = Vec::new();
    for (i, (_, s)) in shapes.iter().enumerate() {
        if s[2] == box_ch {
            continue;
        }
        let b = shapes
            .iter()
            .position(|(_, o)| o[2] == box_ch && o[1] == s[1])
            .ok_or_else(|| mismatch(NAME, format!("no box output with {} cells", s[1])))?;
        pairs.push((s[1] as usize, i, b));
    }
    if pairs.len() != shapes.len() / 2 {
        return Err(mismatch(NAME, "score and box outputs do not pair up"));
    }
    pairs.sort_by_key(|p| std::cmp::Reverse(p.0));
    Ok(pairs)
}

pub fn check(outputs: &[OutputSpec]) -> Result<(), DecodeError> {
    let shapes: Vec<(&str, &[i64])> = outputs
        .iter()
        .map(|o| (o.name.as_str(), o.shape.as_slice()))
        .collect();
    levels(&shapes).map(|_| ())
}

fn softmax_expectation(bins: &[f32]) -> f32 {
    let max = bins.iter().copied().fold(f32::MIN, f32::max);
    let (mut sum, mut weighted) = (0.0f32, 0.0f32);
    for (i, &v) in bins.iter().enumerate() {
        let e = (v - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    weighted / sum
}

pub fn decode(
    outputs: &[OutputTensor],
    threshold: f32,
    keep: &dyn Fn(usize) -> bool,
) -> Result<Vec<RawDetection>, DecodeError> {
    let shapes: Vec<(&str, &[i64])> = outputs.iter().map(|o| (o.name, o.shape)).collect();
    let pairs = levels(&shapes)?;
    // The finest level has the most cells; its grid side times its stride is the input side.
    let finest_side = (pairs[0].0 as f64).sqrt().round() as usize;
    let mut dets = Vec::new();
    for &(cells, si, bi) in &pairs {
        let side = (cells as f64).sqrt().round() as usize;
        if side * side != cells {
            return Err(mismatch(
                NAME,
                format!("{cells} cells is not a square grid"),
            ));
        }
        let stride = 8.0 * (finest_side / side) as f32;
        let (scores, boxes) = (&outputs[si], &outputs[bi]);
        let classes = scores.shape[2] as usize;
        let bins_all = boxes.shape[2] as usize;
        let bins = bins_all / 4;
        if scores.data.len() < cells * classes || boxes.data.len() < cells * bins_all {
            return Err(mismatch(NAME, "outputs hold too little data"));
        }
        for cell in 0..cells {
            let row = &scores.data[cell * classes..(cell + 1) * classes];
            let (class, score) = row
                .iter()
                .copied()
                .enumerate()
                .filter(|&(c, _)| keep(c))
                .fold(
                    (0, f32::MIN),
                    |best, cur| if cur.1 > best.1 { cur } else { best },
                );
            if score <= threshold {
                continue;
            }
            let cx = ((cell % side) as f32 + 0.5) * stride;
            let cy = ((cell / side) as f32 + 0.5) * stride;
            let reg = &boxes.data[cell * bins_all..(cell + 1) * bins_all];
            let d: Vec<f32> = reg
                .chunks_exact(bins)
                .map(|b| softmax_expectation(b) * stride)
                .collect();
            dets.push(RawDetection {
                x0: cx - d[0],
                y0: cy - d[1],
                x1: cx + d[2],
                y1: cy + d[3],
                score,
                class,
                landmarks: Vec::new(),
            });
        }
    }
    Ok(dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_of_a_peaked_distribution() {
        let mut bins = vec![-50.0f32; 11];
        bins[3] = 50.0;
        assert!((softmax_expectation(&bins) - 3.0).abs() < 1e-4);
    }

    #[test]
    fn decodes_a_cell_on_two_levels_by_shape() {
        // A 16×16 input: level stride 8 has 2×2 cells, stride 16 has 1×1. Two classes, 2 bins.
        let s8 = vec![1i64, 4, 2];
        let b8 = vec![1i64, 4, 8];
        let s16 = vec![1i64, 1, 2];
        let b16 = vec![1i64, 1, 8];
        let mut scores8 = vec![0.0f32; 8];
        scores8[3 * 2 + 1] = 0.8; // cell 3 (row 1, col 1), class 1
        let mut boxes8 = vec![-50.0f32; 32];
        for side in 0..4 {
            boxes8[3 * 8 + side * 2 + 1] = 50.0; // every side: bin 1 → distance 8
        }
        let scores16 = vec![0.1f32; 2];
        let boxes16 = vec![0.0f32; 8];
        let outs = [
            OutputTensor {
                name: "a",
                shape: &s16,
                data: &scores16,
            },
            OutputTensor {
                name: "b",
                shape: &b8,
                data: &boxes8,
            },
            OutputTensor {
                name: "c",
                shape: &s8,
                data: &scores8,
            },
            OutputTensor {
                name: "d",
                shape: &b16,
                data: &boxes16,
            },
        ];
        let dets = decode(&outs, 0.5, &|_| true).unwrap();
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        // centre (1.5·8, 1.5·8) = (12, 12), 8 on every side.
        assert_eq!((d.x0, d.y0, d.x1, d.y1, d.class), (4.0, 4.0, 20.0, 20.0, 1));
        assert!(
            decode(&outs, 0.5, &|c| c != 1).unwrap().is_empty(),
            "filtered class must not show"
        );
    }

    #[test]
    fn rejects_centerface_outputs() {
        let specs: Vec<OutputSpec> = [1, 2, 2, 10]
            .iter()
            .map(|&c| OutputSpec {
                name: "x".into(),
                shape: vec![1, c, -1, -1],
            })
            .collect();
        assert!(check(&specs).is_err());
    }
}
