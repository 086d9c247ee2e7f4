// SPDX-License-Identifier: MIT OR Apache-2.0
//! Image classifiers: one output of N class scores (`[1, N]`, `[N]` or `[1, N, 1, 1]`), logits
//! or probabilities. The scores go through a softmax unless they already are a probability
//! distribution (all in 0..1, summing to 1 within 1e-3). The result is the most probable class
//! with its probability, as one region covering the whole image the model saw.

use super::{DecodeError, OutputSpec, OutputTensor, RawDetection, mismatch};

const NAME: &str = "classifier";

/// The class dimension of a shape whose other dimensions are all 1 (or dynamic).
fn classes(shape: &[i64]) -> Option<i64> {
    let big: Vec<i64> = shape.iter().copied().filter(|&d| d != 1).collect();
    match big.as_slice() {
        [n] if *n >= 2 || *n == -1 => Some(*n),
        _ => None,
    }
}

pub fn check(outputs: &[OutputSpec]) -> Result<(), DecodeError> {
    let first = outputs
        .first()
        .ok_or_else(|| mismatch(NAME, "the model has no output"))?;
    classes(&first.shape).map(|_| ()).ok_or_else(|| {
        mismatch(
            NAME,
            format!(
                "output {} has shape {:?}: expected N class scores ([1, N])",
                first.name, first.shape
            ),
        )
    })
}

/// Softmax, unless `scores` already is a probability distribution.
pub fn probabilities(scores: &[f32]) -> Vec<f32> {
    let sum: f32 = scores.iter().sum();
    if scores.iter().all(|s| (0.0..=1.0).contains(s)) && (sum - 1.0).abs() < 1e-3 {
        return scores.to_vec();
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}

pub fn decode(
    outputs: &[OutputTensor],
    model_w: u32,
    model_h: u32,
    threshold: f32,
    keep: &dyn Fn(usize) -> bool,
) -> Result<Vec<RawDetection>, DecodeError> {
    let out = outputs
        .first()
        .ok_or_else(|| mismatch(NAME, "the model produced no output"))?;
    if out.data.len() < 2 {
        return Err(mismatch(NAME, format!("{} class scores", out.data.len())));
    }
    let probs = probabilities(out.data);
    let (class, &p) = probs
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .ok_or_else(|| mismatch(NAME, "no class scores"))?;
    if p < threshold || !keep(class) {
        return Ok(Vec::new());
    }
    Ok(vec![RawDetection {
        x0: 0.0,
        y0: 0.0,
        x1: model_w as f32,
        y1: model_h as f32,
        score: p,
        class,
        landmarks: Vec::new(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[f32], threshold: f32) -> Vec<RawDetection> {
        let shape = [1, data.len() as i64];
        let out = OutputTensor {
            name: "logits",
            shape: &shape,
            data,
        };
        decode(&[out], 64, 64, threshold, &|_| true).unwrap()
    }

    #[test]
    fn the_most_probable_class_wins() {
        let d = run(&[-2.0, 3.0], 0.5);
        assert_eq!(d[0].class, 1);
        assert!((d[0].score - 0.9933).abs() < 1e-3, "{}", d[0].score);
        // Probabilities are taken as they are.
        let d = run(&[0.7, 0.2, 0.1], 0.5);
        assert_eq!((d[0].class, d[0].score), (0, 0.7));
        // Below the threshold: nothing.
        assert!(run(&[0.4, 0.35, 0.25], 0.5).is_empty());
        assert_eq!((d[0].x1, d[0].y1), (64.0, 64.0));
    }

    #[test]
    fn outputs_must_be_class_scores() {
        let spec = |shape: Vec<i64>| {
            vec![OutputSpec {
                name: "out".into(),
                shape,
            }]
        };
        assert!(check(&spec(vec![1, 2])).is_ok());
        assert!(check(&spec(vec![1, 1000, 1, 1])).is_ok());
        assert!(check(&spec(vec![-1, -1])).is_err());
        assert!(check(&spec(vec![1, 100, 4])).is_err());
        assert!(check(&[]).is_err());
    }
}
