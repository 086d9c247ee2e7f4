// SPDX-License-Identifier: MIT OR Apache-2.0
//! Attention from face landmarks: a frontal head-pose test.
//!
//! With the five CenterFace landmarks (eyes, nose, mouth corners), a head facing the camera
//! has its nose near the vertical midline of the eyes and between the eye line and the mouth
//! line. We measure
//! * yaw: `|nose_x − eye_mid_x| / eye_distance` — 0 when facing, about 0.5 at 45° of yaw;
//! * pitch: `(nose_y − eye_y) / (mouth_y − eye_y)` — about 0.5 when level.
//!
//! A face counts as attending when yaw ≤ [`MAX_YAW`] (about 25° of head turn) and pitch lies in
//! [`PITCH_RANGE`]. Faces without landmarks never count.

pub const MAX_YAW: f64 = 0.25;
pub const PITCH_RANGE: (f64, f64) = (0.2, 0.8);

/// Landmarks in order: left eye, right eye, nose, left mouth corner, right mouth corner
/// (image-space left/right), any consistent unit.
pub fn is_frontal(points: &[(f64, f64)]) -> bool {
    let [le, re, nose, lm, rm] = match points {
        [a, b, c, d, e] => [*a, *b, *c, *d, *e],
        _ => return false,
    };
    let eye_dist = ((re.0 - le.0).powi(2) + (re.1 - le.1).powi(2)).sqrt();
    if eye_dist <= 0.0 {
        return false;
    }
    let eye_mid = ((le.0 + re.0) / 2.0, (le.1 + re.1) / 2.0);
    let mouth_y = (lm.1 + rm.1) / 2.0;
    let yaw = (nose.0 - eye_mid.0).abs() / eye_dist;
    let span = mouth_y - eye_mid.1;
    if span <= 0.0 {
        return false;
    }
    let pitch = (nose.1 - eye_mid.1) / span;
    yaw <= MAX_YAW && (PITCH_RANGE.0..=PITCH_RANGE.1).contains(&pitch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_astronaut_faces_the_camera() {
        // CenterFace's landmarks on astronaut.png (docs/models.md).
        let pts = [
            (203.2, 101.7),
            (247.0, 104.5),
            (223.3, 125.1),
            (203.4, 142.3),
            (241.3, 144.4),
        ];
        assert!(is_frontal(&pts));
    }

    #[test]
    fn a_turned_or_tilted_head_does_not() {
        // Nose far to the right of the eye midline: head turned.
        let turned = [
            (200.0, 100.0),
            (240.0, 100.0),
            (240.0, 122.0),
            (205.0, 142.0),
            (238.0, 142.0),
        ];
        assert!(!is_frontal(&turned));
        // Nose at the eye line: head tilted back.
        let tilted = [
            (200.0, 100.0),
            (240.0, 100.0),
            (220.0, 101.0),
            (205.0, 142.0),
            (238.0, 142.0),
        ];
        assert!(!is_frontal(&tilted));
        assert!(!is_frontal(&[(0.0, 0.0); 3]));
    }
}
