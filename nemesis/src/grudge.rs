//! Grudges: for each node, the set of nodes whose packets it drops.
//!
//! The name and the idea come from Jepsen's nemesis: a partition is not
//! always a clean split into components (a ring of overlapping majorities, or
//! a bridge node that sees both sides, is not), so it is described per node.
//! A grudge is directed: `n1` dropping `n2`'s packets does not by itself make
//! `n2` drop `n1`'s. Every constructor here builds a symmetric grudge.

use crate::node_name;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeSet;

/// For each node (0-based), the nodes whose packets it drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grudge {
    drops: Vec<BTreeSet<usize>>,
}

impl Grudge {
    /// No node drops anything.
    pub fn none(n: usize) -> Grudge {
        Grudge {
            drops: vec![BTreeSet::new(); n],
        }
    }

    /// `node` on one side, everyone else on the other.
    pub fn isolate(n: usize, node: usize) -> Grudge {
        let rest: Vec<usize> = (0..n).filter(|&i| i != node).collect();
        Grudge::from_components(n, &[vec![node], rest])
    }

    /// A random split into a minority of `n / 2` and a majority of the rest.
    pub fn halves(n: usize, rng: &mut impl Rng) -> Grudge {
        let mut nodes: Vec<usize> = (0..n).collect();
        nodes.shuffle(rng);
        let (minority, majority) = nodes.split_at(n / 2);
        Grudge::from_components(n, &[minority.to_vec(), majority.to_vec()])
    }

    /// Each node sees a majority made of itself and its nearest neighbours on
    /// a ring, and drops everyone else: every node is in some majority, but no
    /// two nodes see the same majority.
    pub fn majorities_ring(n: usize) -> Grudge {
        // Seeing itself and `reach` neighbours on each side makes a majority.
        let reach = (n / 2).div_ceil(2);
        let mut grudge = Grudge::none(n);
        for i in 0..n {
            for j in 0..n {
                let d = (i + n - j) % n;
                if d.min(n - d) > reach {
                    grudge.drops[i].insert(j);
                }
            }
        }
        grudge
    }

    /// Two random halves that both see one bridge node, which sees everyone.
    pub fn bridge(n: usize, rng: &mut impl Rng) -> Grudge {
        let mut nodes: Vec<usize> = (0..n).collect();
        nodes.shuffle(rng);
        let Some((&bridge, rest)) = nodes.split_first() else {
            return Grudge::none(n);
        };
        let (left, right) = rest.split_at(rest.len() / 2);
        let mut grudge = Grudge::none(n);
        for &a in left {
            for &b in right {
                grudge.drops[a].insert(b);
                grudge.drops[b].insert(a);
            }
        }
        debug_assert!(grudge.drops[bridge].is_empty());
        grudge
    }

    /// Nodes in different components drop each other's packets. Nodes in no
    /// component are isolated from everyone; indexes `>= n` are ignored.
    pub fn from_components(n: usize, components: &[Vec<usize>]) -> Grudge {
        let mut component = vec![usize::MAX; n];
        for (c, members) in components.iter().enumerate() {
            for &m in members.iter().filter(|&&m| m < n) {
                component[m] = c;
            }
        }
        let mut grudge = Grudge::none(n);
        for i in 0..n {
            for j in 0..n {
                let apart = component[i] != component[j] || component[i] == usize::MAX;
                if i != j && apart {
                    grudge.drops[i].insert(j);
                }
            }
        }
        grudge
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.drops.len()
    }

    /// Checks that the grudge is about a cluster of `n` nodes.
    pub fn expect_nodes(&self, n: usize) -> crate::Result<()> {
        if self.len() == n {
            return Ok(());
        }
        Err(crate::Error::Invalid(format!(
            "grudge covers {} nodes; expected {n}",
            self.len()
        )))
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.drops.is_empty()
    }

    /// True when nobody drops anything.
    pub fn is_healed(&self) -> bool {
        self.drops.iter().all(BTreeSet::is_empty)
    }

    /// The nodes whose packets `node` drops.
    pub fn drops(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.drops.get(node).into_iter().flatten().copied()
    }

    /// Whether `to` drops packets coming from `from`: the directed link
    /// `from -> to` is cut.
    pub fn cuts(&self, from: usize, to: usize) -> bool {
        self.drops.get(to).is_some_and(|set| set.contains(&from))
    }

    /// Makes `node` drop packets from `from`.
    pub fn add(&mut self, node: usize, from: usize) {
        if node < self.len() && from < self.len() && node != from {
            self.drops[node].insert(from);
        }
    }

    /// The connected groups when the grudge is a clean split (every node
    /// sees exactly the others of its group), else `None`.
    pub fn components(&self) -> Option<Vec<Vec<usize>>> {
        let n = self.len();
        let sees = |i: usize| -> BTreeSet<usize> {
            (0..n).filter(|j| !self.drops[i].contains(j)).collect()
        };
        let mut groups: Vec<BTreeSet<usize>> = Vec::new();
        for i in 0..n {
            let group = sees(i);
            if group.iter().any(|&j| sees(j) != group) {
                return None;
            }
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        Some(
            groups
                .into_iter()
                .map(|g| g.into_iter().collect())
                .collect(),
        )
    }

    /// A short human description: `n1 | n2 n3 n4 n5` for a clean split,
    /// else who sees whom: `n1 sees n2 n5; n2 sees n1 n3; ...`.
    pub fn describe(&self) -> String {
        let names = |nodes: &mut dyn Iterator<Item = usize>| -> String {
            nodes.map(node_name).collect::<Vec<_>>().join(" ")
        };
        if self.is_healed() {
            return "healed".to_string();
        }
        if let Some(groups) = self.components() {
            return groups
                .iter()
                .map(|g| names(&mut g.iter().copied()))
                .collect::<Vec<_>>()
                .join(" | ");
        }
        (0..self.len())
            .map(|i| {
                let mut seen =
                    (0..self.len()).filter(|j| *j != i && !self.drops[i].contains(j));
                format!("{} sees {}", node_name(i), names(&mut seen))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Serialized as a map from node name to the names it drops:
/// `{"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}`; nodes that drop
/// nothing are left out.
impl Serialize for Grudge {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let busy = self.drops.iter().filter(|d| !d.is_empty()).count();
        let mut map = serializer.serialize_map(Some(busy))?;
        for (i, set) in self.drops.iter().enumerate().filter(|(_, d)| !d.is_empty()) {
            let names: Vec<String> = set.iter().map(|&j| node_name(j)).collect();
            map.serialize_entry(&node_name(i), &names)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn sees(grudge: &Grudge, node: usize) -> BTreeSet<usize> {
        (0..grudge.len())
            .filter(|&j| !grudge.cuts(j, node))
            .collect()
    }

    fn symmetric(grudge: &Grudge) -> bool {
        let n = grudge.len();
        (0..n).all(|i| (0..n).all(|j| grudge.cuts(i, j) == grudge.cuts(j, i)))
    }

    #[test]
    fn isolating_a_node_cuts_it_from_everyone_else_only() {
        let grudge = Grudge::isolate(5, 0);
        assert_eq!(grudge.describe(), "n1 | n2 n3 n4 n5");
        assert!(grudge.cuts(0, 1) && grudge.cuts(1, 0));
        assert!(!grudge.cuts(1, 2));
        assert!(symmetric(&grudge));
    }

    #[test]
    fn halves_split_into_a_minority_and_a_majority() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in 2..8 {
            let grudge = Grudge::halves(n, &mut rng);
            let mut sizes: Vec<usize> =
                grudge.components().unwrap().iter().map(Vec::len).collect();
            sizes.sort();
            assert_eq!(sizes, vec![n / 2, n - n / 2]);
            assert!(symmetric(&grudge));
        }
    }

    #[test]
    fn in_a_majorities_ring_every_node_sees_its_own_majority() {
        for n in [3, 4, 5, 7] {
            let grudge = Grudge::majorities_ring(n);
            let views: Vec<BTreeSet<usize>> = (0..n).map(|i| sees(&grudge, i)).collect();
            for view in &views {
                assert!(view.len() > n / 2, "n={n}: {view:?} is no majority");
            }
            if n >= 5 {
                let distinct: BTreeSet<_> = views.iter().collect();
                assert_eq!(distinct.len(), n, "n={n}: two nodes share a majority");
                assert!(grudge.components().is_none());
            }
            assert!(symmetric(&grudge));
        }
        assert_eq!(
            Grudge::majorities_ring(5).describe(),
            "n1 sees n2 n5; n2 sees n1 n3; n3 sees n2 n4; n4 sees n3 n5; n5 sees n1 n4"
        );
    }

    #[test]
    fn a_bridge_node_sees_both_halves_that_cannot_see_each_other() {
        let mut rng = StdRng::seed_from_u64(3);
        let grudge = Grudge::bridge(5, &mut rng);
        let bridge = (0..5).find(|&i| sees(&grudge, i).len() == 5).unwrap();
        let others: Vec<usize> = (0..5).filter(|&i| i != bridge).collect();
        for &i in &others {
            assert_eq!(
                sees(&grudge, i).len(),
                3,
                "node {i} sees its half and the bridge"
            );
        }
        assert!(grudge.components().is_none());
        assert!(symmetric(&grudge));
    }

    #[test]
    fn nodes_left_out_of_every_component_are_isolated() {
        let grudge = Grudge::from_components(4, &[vec![0, 1], vec![2], vec![9]]);
        assert_eq!(grudge.describe(), "n1 n2 | n3 | n4");
        assert!(grudge.cuts(3, 0) && grudge.cuts(3, 2));
    }

    #[test]
    fn a_grudge_is_directed() {
        let mut grudge = Grudge::none(3);
        grudge.add(1, 0);
        assert!(grudge.cuts(0, 1));
        assert!(!grudge.cuts(1, 0));
        assert_eq!(grudge.drops(1).collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            grudge.describe(),
            "n1 sees n2 n3; n2 sees n3; n3 sees n1 n2"
        );
    }

    #[test]
    fn serializes_as_names_to_the_names_they_drop() {
        let grudge = Grudge::isolate(3, 2);
        let json = serde_json::to_string(&grudge).unwrap();
        assert_eq!(json, r#"{"n1":["n3"],"n2":["n3"],"n3":["n1","n2"]}"#);
        assert_eq!(serde_json::to_string(&Grudge::none(2)).unwrap(), "{}");
        assert_eq!(Grudge::none(2).describe(), "healed");
    }
}
