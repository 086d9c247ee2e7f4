// SPDX-License-Identifier: MIT OR Apache-2.0
//! Greedy non-maximum suppression, per class.

use super::RawDetection;

/// Intersection over union of two boxes.
pub fn iou(a: &RawDetection, b: &RawDetection) -> f32 {
    let w = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let h = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = w * h;
    let union = a.area() + b.area() - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Keeps the best-scoring box of every group of same-class boxes overlapping above `iou_limit`.
/// The result is sorted by descending score.
pub fn nms(mut dets: Vec<RawDetection>, iou_limit: f32) -> Vec<RawDetection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<RawDetection> = Vec::with_capacity(dets.len().min(64));
    for d in dets {
        if kept
            .iter()
            .all(|k| k.class != d.class || iou(k, &d) <= iou_limit)
        {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x0: f32, y0: f32, x1: f32, y1: f32, score: f32, class: usize) -> RawDetection {
        RawDetection {
            x0,
            y0,
            x1,
            y1,
            score,
            class,
            landmarks: vec![],
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(
            iou(&det(0., 0., 10., 10., 1., 0), &det(0., 0., 10., 10., 1., 0)),
            1.0
        );
        assert_eq!(
            iou(
                &det(0., 0., 10., 10., 1., 0),
                &det(10., 0., 20., 10., 1., 0)
            ),
            0.0
        );
        let v = iou(&det(0., 0., 10., 10., 1., 0), &det(5., 0., 15., 10., 1., 0));
        assert!((v - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn suppresses_overlaps_within_a_class_only() {
        let out = nms(
            vec![
                det(0., 0., 10., 10., 0.6, 0),
                det(1., 1., 11., 11., 0.9, 0),
                det(1., 1., 11., 11., 0.8, 1),
                det(50., 50., 60., 60., 0.5, 0),
            ],
            0.5,
        );
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.8, 0.5]);
    }
}
