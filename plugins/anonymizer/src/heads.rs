// SPDX-License-Identifier: MIT OR Apache-2.0
//! Head regions of detected persons whose face was not found.
//!
//! Face detectors miss faces that are small, turned away, blurred or dark long before a person
//! detector misses the body. For every person box without a found face in its head region,
//! the head region itself becomes a mask candidate, so the face is covered anyway.
//!
//! The head is at the top of the box, centred. Its size follows the box's shape: a standing
//! person's box (height about 3× its width) has a head about a fifth of its height (body
//! proportions of about 7.5 heads, plus the box's slack); an upper-body box (height ≈ width)
//! has a head of about 0.45 of its height. Between them the fraction is linear in the ratio,
//! and the head is never wider than 90% of the box.
//!
//! Boxes are normalized `[x_min, y_min, x_max, y_max]`; `aspect` is the frame's width / height,
//! so the head is square in pixels.

use crate::hold::{BBox, Candidate};

/// The head region of a person box (see the module's notes for its proportions).
pub fn head_of(person: &BBox, aspect: f64) -> BBox {
    let [x0, y0, x1, y1] = *person;
    // In units of the frame's height on both axes.
    let w = (x1 - x0) * aspect;
    let h = y1 - y0;
    let ratio = h / w.max(1e-9);
    let fraction = (0.55 - 0.11 * ratio).clamp(0.18, 0.45);
    let side = (fraction * h).min(0.9 * w);
    let half_w = 0.6 * side / aspect;
    let cx = (x0 + x1) / 2.0;
    // A little above the box: detectors often cut the crown.
    [cx - half_w, y0 - 0.1 * side, cx + half_w, y0 + 1.1 * side]
}

/// Head candidates of `persons` whose head region holds the centre of none of `faces`.
pub fn unfound_heads(persons: &[Candidate], faces: &[BBox], aspect: f64) -> Vec<Candidate> {
    persons
        .iter()
        .filter_map(|p| {
            let head = head_of(&p.bbox, aspect);
            let found = faces.iter().any(|f| {
                let (cx, cy) = ((f[0] + f[2]) / 2.0, (f[1] + f[3]) / 2.0);
                cx >= head[0] && cx <= head[2] && cy >= head[1] && cy <= head[3]
            });
            (!found).then_some(Candidate {
                bbox: head,
                confidence: p.confidence,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(b: BBox) -> Candidate {
        Candidate {
            bbox: b,
            confidence: 0.7,
        }
    }

    /// Pixel box of a normalized one in a 1280×720 frame.
    fn px(b: BBox) -> [f64; 4] {
        [b[0] * 1280.0, b[1] * 720.0, b[2] * 1280.0, b[3] * 720.0]
    }

    #[test]
    fn a_standing_person_gets_a_square_head_at_the_top() {
        // 100×300 px person at (600, 200).
        let p = [600.0 / 1280.0, 200.0 / 720.0, 700.0 / 1280.0, 500.0 / 720.0];
        let h = px(head_of(&p, 1280.0 / 720.0));
        let (w, ht) = (h[2] - h[0], h[3] - h[1]);
        // A fifth-ish of 300 px, square in pixels (1.2 wide × 1.2 tall of the side).
        assert!((w - ht).abs() < 1e-6, "{h:?}");
        assert!((50.0..90.0).contains(&w), "{h:?}");
        assert!(((h[0] + h[2]) / 2.0 - 650.0).abs() < 1e-6, "centred");
        assert!(h[1] < 200.0 && h[3] < 280.0, "at the top: {h:?}");
    }

    #[test]
    fn an_upper_body_box_has_a_larger_head() {
        let standing = [0.4, 0.2, 0.45, 0.8];
        let upper = [0.4, 0.2, 0.6, 0.55];
        let a = 1280.0 / 720.0;
        let frac = |b: BBox| {
            let h = head_of(&b, a);
            (h[3] - h[1]) / (b[3] - b[1])
        };
        assert!(frac(upper) > frac(standing) * 1.5);
    }

    #[test]
    fn persons_whose_face_was_found_need_no_head_mask() {
        let a = 1280.0 / 720.0;
        let p1 = person([0.1, 0.1, 0.15, 0.6]);
        let p2 = person([0.5, 0.1, 0.55, 0.6]);
        let head2 = head_of(&p2.bbox, a);
        let face_in_p2 = [
            head2[0] + 0.005,
            head2[1] + 0.01,
            head2[2] - 0.005,
            head2[3] - 0.01,
        ];
        // A face lower down the body (a printed T-shirt, say) does not count as the head's.
        let shirt_face = [0.11, 0.4, 0.14, 0.45];
        let heads = unfound_heads(&[p1, p2], &[face_in_p2, shirt_face], a);
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].bbox, head_of(&p1.bbox, a));
        assert_eq!(heads[0].confidence, 0.7);
    }
}
