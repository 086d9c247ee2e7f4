// SPDX-License-Identifier: MIT OR Apache-2.0
//! Detections as `GstVideoRegionOfInterestMeta`, with params in the DL Streamer convention.
//!
//! * `roi_type` is the label (`face`, `person`, ...); the ROI rectangle is in pixels.
//! * param `detection`: `confidence` (f64), `label_id` (i32), `label` (string) and the box
//!   normalized to the frame, `x_min`, `y_min`, `x_max`, `y_max` (f64 in 0..1).
//! * param `landmarks` (faces): `format` = `landmark_points`, `names` (comma-separated) and
//!   `points`, a flat array `x0, y0, x1, y1, ...` normalized to the frame.
//! * param `object_id`: `id` (i32), set by a tracker. Ephemeral: never persisted.

use gst_video::VideoRegionOfInterestMeta;

/// Names of the five CenterFace landmarks, in image-space left/right.
pub const FACE_LANDMARK_NAMES: [&str; 5] =
    ["eye_left", "eye_right", "nose", "mouth_left", "mouth_right"];

/// Intersection over union of two `[x_min, y_min, x_max, y_max]` boxes (any one unit); 0 for
/// empty or disjoint boxes.
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// An axis-aligned box with coordinates normalized to the frame (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalizedBox {
    pub x_min: f64,
    pub y_min: f64,
    pub x_max: f64,
    pub y_max: f64,
}

impl NormalizedBox {
    /// Clamps the box into the frame.
    pub fn clamped(self) -> Self {
        let c = |v: f64| v.clamp(0.0, 1.0);
        NormalizedBox {
            x_min: c(self.x_min),
            y_min: c(self.y_min),
            x_max: c(self.x_max),
            y_max: c(self.y_max),
        }
    }

    /// The box in whole pixels `(x, y, w, h)` of a `width`×`height` frame, rounded outward so
    /// that the pixel box always contains the normalized one.
    pub fn to_pixels(self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let b = self.clamped();
        let x0 = (b.x_min * width as f64).floor() as u32;
        let y0 = (b.y_min * height as f64).floor() as u32;
        let x1 = ((b.x_max * width as f64).ceil() as u32).min(width);
        let y1 = ((b.y_max * height as f64).ceil() as u32).min(height);
        (x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
    }
}

/// Named key points, normalized to the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Landmarks {
    pub names: Vec<String>,
    pub points: Vec<(f64, f64)>,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub label: String,
    pub label_id: i32,
    pub confidence: f64,
    pub bbox: NormalizedBox,
    pub landmarks: Option<Landmarks>,
    /// Tracker id, when a tracker has set one.
    pub object_id: Option<i32>,
}

impl Detection {
    /// Adds this detection as a ROI meta on a buffer of a `width`×`height` frame.
    pub fn attach(&self, buffer: &mut gst::BufferRef, width: u32, height: u32) {
        let rect = self.bbox.to_pixels(width, height);
        let mut meta = VideoRegionOfInterestMeta::add(buffer, &self.label, rect);
        let b = self.bbox.clamped();
        meta.add_param(
            gst::Structure::builder("detection")
                .field("confidence", self.confidence)
                .field("label_id", self.label_id)
                .field("label", self.label.as_str())
                .field("x_min", b.x_min)
                .field("y_min", b.y_min)
                .field("x_max", b.x_max)
                .field("y_max", b.y_max)
                .build(),
        );
        if let Some(lm) = &self.landmarks {
            let flat: Vec<f64> = lm.points.iter().flat_map(|&(x, y)| [x, y]).collect();
            meta.add_param(
                gst::Structure::builder("landmarks")
                    .field("format", "landmark_points")
                    .field("names", lm.names.join(",").as_str())
                    .field("points", gst::Array::new(flat))
                    .build(),
            );
        }
        if let Some(id) = self.object_id {
            meta.add_param(gst::Structure::builder("object_id").field("id", id).build());
        }
    }

    /// Reads a detection back from a ROI meta. ROIs without a `detection` param (e.g. added by
    /// other elements) get confidence 1 and the box of their pixel rectangle.
    pub fn from_roi(roi: &VideoRegionOfInterestMeta, width: u32, height: u32) -> Self {
        let (x, y, w, h) = roi.rect();
        let pixel_box = NormalizedBox {
            x_min: x as f64 / width.max(1) as f64,
            y_min: y as f64 / height.max(1) as f64,
            x_max: (x + w) as f64 / width.max(1) as f64,
            y_max: (y + h) as f64 / height.max(1) as f64,
        };
        let det = roi.param("detection");
        let get =
            |name: &str, default: f64| det.and_then(|s| s.get::<f64>(name).ok()).unwrap_or(default);
        let bbox = NormalizedBox {
            x_min: get("x_min", pixel_box.x_min),
            y_min: get("y_min", pixel_box.y_min),
            x_max: get("x_max", pixel_box.x_max),
            y_max: get("y_max", pixel_box.y_max),
        };
        let landmarks = roi.param("landmarks").and_then(|s| {
            let flat = s.get::<gst::Array>("points").ok()?;
            let values: Vec<f64> = flat.iter().filter_map(|v| v.get::<f64>().ok()).collect();
            let names = s.get::<&str>("names").unwrap_or("");
            Some(Landmarks {
                names: names
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect(),
                points: values.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
            })
        });
        Detection {
            label: roi.roi_type().to_owned(),
            label_id: det
                .and_then(|s| s.get::<i32>("label_id").ok())
                .unwrap_or(-1),
            confidence: get("confidence", 1.0),
            bbox,
            landmarks,
            object_id: roi.param("object_id").and_then(|s| s.get::<i32>("id").ok()),
        }
    }

    /// All ROI metas of `buffer` as detections.
    pub fn all(buffer: &gst::BufferRef, width: u32, height: u32) -> Vec<Detection> {
        buffer
            .iter_meta::<VideoRegionOfInterestMeta>()
            .map(|roi| Detection::from_roi(&roi, width, height))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[0.0, 0.0, 2.0, 2.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[1.0, 0.0, 2.0, 1.0]), 0.0);
        assert!((iou(&[0.0, 0.0, 2.0, 1.0], &[1.0, 0.0, 3.0, 1.0]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(iou(&[0.0; 4], &[0.0; 4]), 0.0);
    }

    #[test]
    fn pixel_boxes_round_outward_and_clamp() {
        let b = NormalizedBox {
            x_min: 0.101,
            y_min: -0.2,
            x_max: 0.499,
            y_max: 1.3,
        };
        assert_eq!(b.to_pixels(100, 50), (10, 0, 40, 50));
    }

    #[test]
    fn detection_round_trips_through_a_roi_meta() {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        let det = Detection {
            label: "face".into(),
            label_id: 0,
            confidence: 0.93,
            bbox: NormalizedBox {
                x_min: 0.25,
                y_min: 0.125,
                x_max: 0.5,
                y_max: 0.375,
            },
            landmarks: Some(Landmarks {
                names: FACE_LANDMARK_NAMES.iter().map(|s| s.to_string()).collect(),
                points: vec![
                    (0.3, 0.2),
                    (0.4, 0.2),
                    (0.35, 0.25),
                    (0.31, 0.3),
                    (0.39, 0.3),
                ],
            }),
            object_id: Some(7),
        };
        det.attach(buffer.get_mut().unwrap(), 640, 480);
        let roi = buffer.meta::<VideoRegionOfInterestMeta>().unwrap();
        assert_eq!(roi.rect(), (160, 60, 160, 120));
        assert_eq!(roi.roi_type(), "face");
        assert_eq!(Detection::all(&buffer, 640, 480), vec![det]);
    }
}
