//! Zones (polygons) and directed lines from a TOML config, in normalized coordinates; people
//! are placed by the bottom-centre of their box (their feet), as DeepStream's analytics do.
//!
//! ```toml
//! [[zone]]
//! name = "screen-front"
//! polygon = [[0.2, 0.5], [0.8, 0.5], [0.8, 1.0], [0.2, 1.0]]
//!
//! [[line]]
//! name = "entrance"
//! from = [0.5, 0.0]
//! to = [0.5, 1.0]
//!
//! # Detections placed here are ignored before tracking (a poster, a mannequin, an object the
//! # detector keeps taking for a person).
//! [[exclude]]
//! name = "poster"
//! polygon = [[0.0, 0.0], [0.1, 0.0], [0.1, 0.2], [0.0, 0.2]]
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Zone {
    pub name: String,
    pub polygon: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Line {
    pub name: String,
    pub from: [f64; 2],
    pub to: [f64; 2],
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ZoneConfig {
    #[serde(default, rename = "zone")]
    pub zones: Vec<Zone>,
    #[serde(default, rename = "line")]
    pub lines: Vec<Line>,
    #[serde(default, rename = "exclude")]
    pub excludes: Vec<Zone>,
}

impl ZoneConfig {
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: ZoneConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        for z in cfg.zones.iter().chain(&cfg.excludes) {
            if z.polygon.len() < 3 {
                return Err(format!("zone '{}' needs at least 3 points", z.name));
            }
        }
        let mut names: Vec<&str> = cfg
            .zones
            .iter()
            .map(|z| z.name.as_str())
            .chain(cfg.lines.iter().map(|l| l.name.as_str()))
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("the name '{}' is used twice", w[0]));
        }
        Ok(cfg)
    }
}

impl ZoneConfig {
    /// Whether a box's anchor lies in an exclusion polygon.
    pub fn excluded(&self, b: &[f64; 4]) -> bool {
        let a = anchor(b);
        self.excludes.iter().any(|z| in_polygon(&z.polygon, a))
    }
}

/// The anchor of a box: its bottom centre.
pub fn anchor(b: &[f64; 4]) -> (f64, f64) {
    ((b[0] + b[2]) / 2.0, b[3])
}

pub fn in_polygon(poly: &[[f64; 2]], p: (f64, f64)) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let ([xi, yi], [xj, yj]) = (poly[i], poly[j]);
        if (yi > p.1) != (yj > p.1) && p.0 < (xj - xi) * (p.1 - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Whether moving from `prev` to `cur` crosses the line: `Some(true)` forward (from the line's
/// right side to its left, looking from `from` to `to` in image coordinates), `Some(false)`
/// backward, `None` no crossing.
pub fn crossing(line: &Line, prev: (f64, f64), cur: (f64, f64)) -> Option<bool> {
    let (a, b) = ((line.from[0], line.from[1]), (line.to[0], line.to[1]));
    // Sides: a point exactly on the line counts as on the right side, so a step that lands
    // on the line and the next one that leaves it count one crossing, not zero or two.
    let right = |p| cross(a, b, p) >= 0.0;
    let (d3, d4) = (cross(prev, cur, a), cross(prev, cur, b));
    let crosses = right(prev) != right(cur) && (d3 >= 0.0) != (d4 >= 0.0);
    // With y pointing down, a negative cross product is the left side of the direction.
    crosses.then_some(!right(cur))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format_and_rejects_bad_configs() {
        let cfg = ZoneConfig::parse(
            "[[zone]]\nname='a'\npolygon=[[0,0],[0.5,0],[0.5,1],[0,1]]\n[[line]]\nname='door'\nfrom=[0.5,0]\nto=[0.5,1]\n",
        )
        .unwrap();
        assert_eq!((cfg.zones.len(), cfg.lines.len()), (1, 1));
        assert!(
            ZoneConfig::parse("[[zone]]\nname='a'\npolygon=[[0,0],[1,1]]")
                .unwrap_err()
                .contains("3 points")
        );
        assert!(ZoneConfig::parse("[[zone]]\nname='a'\npolygon=[[0,0],[1,0],[1,1]]\n[[line]]\nname='a'\nfrom=[0,0]\nto=[1,1]").unwrap_err().contains("twice"));
        assert!(ZoneConfig::parse("zone = 3").is_err());
        let ex = ZoneConfig::parse(
            "[[exclude]]\nname='cone'\npolygon=[[0.2,0.3],[0.3,0.3],[0.3,0.4],[0.2,0.4]]",
        )
        .unwrap();
        assert!(ex.excluded(&[0.21, 0.2, 0.25, 0.35]));
        assert!(!ex.excluded(&[0.21, 0.2, 0.25, 0.45]));
    }

    #[test]
    fn crossings_have_a_direction() {
        let line = Line {
            name: "l".into(),
            from: [0.5, 0.0],
            to: [0.5, 1.0],
        };
        // Looking down the screen (from top to bottom), the right side is x < 0.5.
        assert_eq!(crossing(&line, (0.4, 0.5), (0.6, 0.5)), Some(true));
        assert_eq!(crossing(&line, (0.6, 0.5), (0.4, 0.5)), Some(false));
        assert_eq!(crossing(&line, (0.4, 0.5), (0.45, 0.5)), None);
        assert!(in_polygon(
            &[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
            anchor(&[0.2, 0.2, 0.4, 0.6])
        ));
    }
}
