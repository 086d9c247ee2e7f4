// SPDX-License-Identifier: MIT OR Apache-2.0
//! Generic SSD-style post-processed outputs: boxes, scores and classes.
//!
//! This is the layout of TensorFlow Object Detection API exports (and many others):
//! `boxes` `[1, N, 4]` as normalized `[y_min, x_min, y_max, x_max]`, `scores` `[1, N]`,
//! `classes` `[1, N]` (float or integer class ids indexing the labels), and optionally
//! `num_detections` `[1]`. Outputs are found by name (`box`, `score`, `class` or `label`, `num`);
//! without such names, by order: boxes, scores, classes.

use super::{DecodeError, OutputSpec, OutputTensor, RawDetection, mismatch};

const NAME: &str = "ssd";

struct Roles {
    boxes: usize,
    scores: usize,
    classes: usize,
    count: Option<usize>,
}

fn roles(names: &[&str]) -> Result<Roles, DecodeError> {
    let find = |keys: &[&str]| {
        names.iter().position(|n| {
            let n = n.to_ascii_lowercase();
            keys.iter().any(|k| n.contains(k))
        })
    };
    let count = find(&["num"]);
    match (find(&["box"]), find(&["score"]), find(&["class", "label"])) {
        (Some(boxes), Some(scores), Some(classes)) => Ok(Roles {
            boxes,
            scores,
            classes,
            count,
        }),
        _ if names.len() >= 3 => Ok(Roles {
            boxes: 0,
            scores: 1,
            classes: 2,
            count: None,
        }),
        _ => Err(mismatch(
            NAME,
            format!("expected boxes, scores and classes outputs, got {names:?}"),
        )),
    }
}

pub fn check(outputs: &[OutputSpec]) -> Result<(), DecodeError> {
    let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    let r = roles(&names)?;
    let boxes = &outputs[r.boxes].shape;
    if boxes.len() < 2 || *boxes.last().unwrap_or(&0) != 4 {
        return Err(mismatch(
            NAME,
            format!(
                "boxes output '{}' has shape {boxes:?}, expected [1, N, 4]",
                outputs[r.boxes].name
            ),
        ));
    }
    Ok(())
}

pub fn decode(
    outputs: &[OutputTensor],
    model_w: u32,
    model_h: u32,
    threshold: f32,
    keep: &dyn Fn(usize) -> bool,
) -> Result<Vec<RawDetection>, DecodeError> {
    let names: Vec<&str> = outputs.iter().map(|o| o.name).collect();
    let r = roles(&names)?;
    let (boxes, scores, classes) = (&outputs[r.boxes], &outputs[r.scores], &outputs[r.classes]);
    let mut n = scores
        .data
        .len()
        .min(classes.data.len())
        .min(boxes.data.len() / 4);
    if let Some(c) = r.count.and_then(|i| outputs[i].data.first()) {
        n = n.min(c.max(0.0) as usize);
    }
    let (mw, mh) = (model_w as f32, model_h as f32);
    let mut dets = Vec::new();
    for i in 0..n {
        let score = scores.data[i];
        let class = classes.data[i];
        if score <= threshold || class < 0.0 || !keep(class as usize) {
            continue;
        }
        let b = &boxes.data[i * 4..i * 4 + 4];
        dets.push(RawDetection {
            x0: b[1].clamp(0.0, 1.0) * mw,
            y0: b[0].clamp(0.0, 1.0) * mh,
            x1: b[3].clamp(0.0, 1.0) * mw,
            y1: b[2].clamp(0.0, 1.0) * mh,
            score,
            class: class as usize,
            landmarks: Vec::new(),
        });
    }
    Ok(dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_by_name_and_honours_num_detections() {
        let boxes = [
            0.1f32, 0.2, 0.5, 0.6, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.5, 0.5,
        ];
        let scores = [0.9f32, 0.8, 0.95];
        let classes = [3.0f32, 1.0, 2.0];
        let num = [2.0f32];
        let (sb, ss, sn) = ([1i64, 3, 4], [1i64, 3], [1i64]);
        let outs = [
            OutputTensor {
                name: "detection_scores",
                shape: &ss,
                data: &scores,
            },
            OutputTensor {
                name: "num_detections",
                shape: &sn,
                data: &num,
            },
            OutputTensor {
                name: "detection_boxes",
                shape: &sb,
                data: &boxes,
            },
            OutputTensor {
                name: "detection_classes",
                shape: &ss,
                data: &classes,
            },
        ];
        let dets = decode(&outs, 100, 200, 0.5, &|c| c != 1).unwrap();
        assert_eq!(
            dets.len(),
            1,
            "third box is past num_detections, second is filtered"
        );
        let d = &dets[0];
        let got = [d.x0, d.y0, d.x1, d.y1];
        for (g, w) in got.iter().zip([20.0, 20.0, 60.0, 100.0]) {
            assert!((g - w).abs() < 1e-3, "{got:?}");
        }
        assert_eq!(d.class, 3);
    }
}
