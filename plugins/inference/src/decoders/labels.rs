// SPDX-License-Identifier: MIT OR Apache-2.0
//! Class labels: the built-in COCO list and label files (one label per line).

/// The 80 COCO classes in the order NanoDet and most COCO-trained detectors use.
pub const COCO: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Parses a labels file: one label per line, line N is class N; blank lines and `#` comments
/// are skipped only at the end of the file so that ids stay aligned.
pub fn parse_labels(text: &str) -> Vec<String> {
    let mut labels: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    while labels
        .last()
        .is_some_and(|l| l.is_empty() || l.starts_with('#'))
    {
        labels.pop();
    }
    labels
}

/// Parses a comma-separated list, trimming and dropping empty items.
pub fn parse_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_files_keep_ids_aligned() {
        assert_eq!(parse_labels("ok\n\nng\n\n# end\n"), vec!["ok", "", "ng"]);
        assert_eq!(parse_list(" person, face ,,"), vec!["person", "face"]);
    }
}
