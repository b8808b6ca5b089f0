//! The k-dominance filter behind the exact knapsack ([`super::knapsack`]): keep the
//! items that fewer than `k` other items dominate.
//!
//! An item is a (partial) combination with a score (lower is better), a cost per
//! dimension and its candidate ids. `Q` dominates `P` when
//!
//! ```text
//! Q.score ≤ P.score,   Q.cost[d] ≤ P.cost[d] for every constrained d,   key(Q) < key(P)
//! ```
//!
//! where `key` is lexicographic: `(cost[d] for constrained d, ids)` in the search (the
//! strict part is on the tie-break key, not on the score, so that a tie created by f64
//! rounding of the summed scores still leaves `Q + R` ahead of `P + R`), or
//! `(cost[d]…, score, ids)` for a plain Pareto front (no sums, no rounding).
//!
//! Sweep: sort by `key`, so every dominator of an item comes before it and has the first
//! constrained cost ≤ its own. With one constrained dimension (or none) the only condition
//! left is `score ≤`; with two, also `cost[second] ≤`, answered by a Fenwick tree over
//! the ranks of the second cost whose nodes hold the `k` smallest scores inserted below
//! them. Each item costs `O(k log n)`, the whole filter `O(n (log n + k log n))`.

use std::cmp::Ordering;

/// A (partial) combination: one candidate from each of the first blocks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Partial {
    /// Σ scores, summed block by block from the left.
    pub score: f64,
    /// Σ costs: `[params, flops]`.
    pub cost: [u64; 2],
    /// Candidate id per block so far.
    pub ids: Vec<usize>,
}

/// Which order makes up the strict part of dominance (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// `(constrained costs, ids)`: for sums of scores.
    CostsIds,
    /// `(constrained costs, score, ids)`: a plain Pareto front of one block.
    CostsScoreIds,
}

/// Compares `a` and `b` by `key` over the cost dimensions `dims`.
pub(crate) fn cmp_key(a: &Partial, b: &Partial, dims: &[usize], key: Key) -> Ordering {
    let costs = dims.iter().map(|&d| a.cost[d].cmp(&b.cost[d])).find(|o| o.is_ne()).unwrap_or(Ordering::Equal);
    let score = match key {
        Key::CostsIds => Ordering::Equal,
        Key::CostsScoreIds => a.score.total_cmp(&b.score),
    };
    costs.then(score).then_with(|| a.ids.cmp(&b.ids))
}

/// The final ranking: score, then the tie-break key `(constrained costs, ids)`.
pub(crate) fn cmp_rank(a: &Partial, b: &Partial, dims: &[usize]) -> Ordering {
    a.score.total_cmp(&b.score).then_with(|| cmp_key(a, b, dims, Key::CostsIds))
}

/// The items of `items` dominated by fewer than `k` others, sorted by `key`.
/// `dims` lists the constrained cost dimensions (at most 2, each 0 or 1); `k ≥ 1`.
pub(crate) fn keep_fewer_than(mut items: Vec<Partial>, dims: &[usize], key: Key, k: usize) -> Vec<Partial> {
    items.sort_by(|a, b| cmp_key(a, b, dims, key));
    // With two constrained dimensions, the second one is queried through ranks.
    let ranks: Vec<usize> = match dims {
        [_, second] => {
            let mut values: Vec<u64> = items.iter().map(|p| p.cost[*second]).collect();
            values.sort_unstable();
            values.dedup();
            items.iter().map(|p| values.partition_point(|&v| v < p.cost[*second])).collect()
        }
        _ => vec![0; items.len()],
    };
    let size = ranks.iter().max().map_or(0, |&r| r + 1);
    let mut tree = KSmallestTree::new(size, k);
    let mut kept = Vec::new();
    for (item, rank) in items.into_iter().zip(ranks) {
        // Everything inserted so far comes earlier in `key`; those at ranks ≤ this one
        // with a score ≤ this one dominate it.
        let dominated = tree.count_at_most(rank, item.score) >= k;
        tree.insert(rank, item.score);
        if !dominated {
            kept.push(item);
        }
    }
    kept
}

/// A Fenwick tree over ranks whose nodes keep the `k` smallest scores inserted in their
/// range: enough to tell whether at least `k` inserted scores at ranks ≤ r are ≤ s.
struct KSmallestTree {
    nodes: Vec<Vec<f64>>,
    k: usize,
}

impl KSmallestTree {
    fn new(size: usize, k: usize) -> Self {
        KSmallestTree { nodes: vec![Vec::new(); size + 1], k }
    }

    fn insert(&mut self, rank: usize, score: f64) {
        let mut i = rank + 1;
        while i < self.nodes.len() {
            let node = &mut self.nodes[i];
            let at = node.partition_point(|&v| v <= score);
            if at < self.k {
                node.insert(at, score);
                node.truncate(self.k);
            }
            i += i & i.wrapping_neg();
        }
    }

    /// min(k, number of inserted scores ≤ `score` at ranks ≤ `rank`) — exact below k,
    /// because a node's list holds all of its scores ≤ `score` unless it holds k of them.
    fn count_at_most(&self, rank: usize, score: f64) -> usize {
        let mut count = 0;
        let mut i = rank + 1;
        while i > 0 && count < self.k {
            count += self.nodes[i].partition_point(|&v| v <= score);
            i -= i & i.wrapping_neg();
        }
        count.min(self.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(score: f64, params: u64, flops: u64, id: usize) -> Partial {
        Partial { score, cost: [params, flops], ids: vec![id] }
    }

    /// The definition, applied pairwise.
    fn dominated_count(items: &[Partial], x: &Partial, dims: &[usize], key: Key) -> usize {
        items
            .iter()
            .filter(|q| {
                q.score <= x.score
                    && dims.iter().all(|&d| q.cost[d] <= x.cost[d])
                    && cmp_key(q, x, dims, key) == Ordering::Less
            })
            .count()
    }

    #[test]
    fn sweep_matches_the_pairwise_definition() {
        let mut rng = crate::util::rng::Rng::new(7);
        for case in 0..300 {
            let n = 1 + case % 40;
            let items: Vec<Partial> =
                (0..n).map(|i| p(rng.below(6) as f64 * 0.5, rng.below(5) as u64, rng.below(5) as u64, i)).collect();
            for dims in [&[][..], &[0], &[1], &[0, 1]] {
                for key in [Key::CostsIds, Key::CostsScoreIds] {
                    for k in [1, 2, 5] {
                        let kept = keep_fewer_than(items.clone(), dims, key, k);
                        let mut want: Vec<Partial> =
                            items.iter().filter(|x| dominated_count(&items, x, dims, key) < k).cloned().collect();
                        want.sort_by(|a, b| cmp_key(a, b, dims, key));
                        assert_eq!(kept, want, "case {case} dims {dims:?} {key:?} k {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn equal_items_keep_the_smallest_ids() {
        let items = vec![p(1.0, 3, 3, 2), p(1.0, 3, 3, 0), p(1.0, 3, 3, 1)];
        let kept = keep_fewer_than(items, &[0], Key::CostsIds, 2);
        assert_eq!(kept.iter().map(|p| p.ids[0]).collect::<Vec<_>>(), [0, 1]);
    }
}
