// SPDX-License-Identifier: MIT OR Apache-2.0
//! Small-cell suppression for demographic breakdowns.
//!
//! A cell (people of one attribute value in one zone and window) below `k` is suppressed
//! (`None`). Since the zone's visitor total is published, a single suppressed cell could be
//! recovered as total − visible cells; so whenever exactly one cell of an attribute is
//! suppressed, the smallest other cell is suppressed too (complementary suppression), and if
//! that is impossible every cell is.

use std::collections::BTreeMap;

pub fn suppress(counts: &BTreeMap<String, u32>, k: u32) -> BTreeMap<String, Option<u32>> {
    let mut out: BTreeMap<String, Option<u32>> = counts
        .iter()
        .map(|(v, &n)| (v.clone(), (n >= k).then_some(n)))
        .collect();
    let suppressed = out.values().filter(|c| c.is_none()).count();
    if suppressed == 1 {
        let smallest = out
            .iter()
            .filter_map(|(v, c)| c.map(|n| (n, v.clone())))
            .min();
        match smallest {
            Some((_, v)) => {
                out.insert(v, None);
            }
            None => out.values_mut().for_each(|c| *c = None),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(v, n)| (v.to_string(), *n)).collect()
    }

    #[test]
    fn a_cell_below_k_is_suppressed_and_not_recoverable_from_the_total() {
        let counts = cells(&[("female", 4), ("male", 10), ("unknown", 6)]);
        let total: u32 = counts.values().sum();
        let out = suppress(&counts, 5);
        assert_eq!(out["female"], None);
        let hidden = out.values().filter(|c| c.is_none()).count();
        assert!(
            hidden >= 2,
            "one hidden cell could be computed from the total"
        );
        // What an attacker can compute: the sum of the hidden cells only.
        let visible: u32 = out.values().flatten().sum();
        assert_eq!(total - visible, 4 + 6);
        assert_eq!(out["male"], Some(10));
    }

    #[test]
    fn no_suppression_when_every_cell_reaches_k_and_all_when_unavoidable() {
        assert_eq!(
            suppress(&cells(&[("a", 5), ("b", 7)]), 5)
                .values()
                .flatten()
                .count(),
            2
        );
        assert!(
            suppress(&cells(&[("a", 3)]), 5)
                .values()
                .all(|c| c.is_none())
        );
        assert_eq!(
            suppress(&cells(&[("a", 1), ("b", 2), ("c", 9)]), 5)["c"],
            Some(9)
        );
    }
}
