//! Lower bounds on the summed score a partial combination can still reach, for pruning
//! against an upper bound on the k-th best score ([`super::knapsack`]).
//!
//! For each later block `i` the bound takes the smallest score among the candidates that
//! fit in the room the budget leaves it: the limit, minus the partial's cost, minus the
//! cheapest cost of the other later blocks. That candidate always lies on the block's
//! Pareto front (a dominating candidate costs no more and scores no worse), so only the
//! front is scanned, in score order, stopping at the first that fits. The scores are
//! summed in block order, like the combination's own score, so f64 rounding keeps
//! `bound ≤ score` for every completion.

use super::dominance::{keep_fewer_than, Key, Partial};

/// Per block, the Pareto front by score and the room rules of one budget.
pub(crate) struct CompletionBound {
    /// Per block, (score, cost) of its front, by score.
    fronts: Vec<Vec<(f64, [u64; 2])>>,
    /// Per block, its cheapest cost in each dimension.
    cheapest: Vec<[u64; 2]>,
    /// The limits (`u64::MAX` for none).
    limits: [u64; 2],
}

impl CompletionBound {
    /// Bounds for `blocks` (the candidates a completion may use) under `limits`, with the
    /// constrained dimensions `dims`.
    pub fn new(blocks: &[Vec<Partial>], dims: &[usize], limits: [Option<u64>; 2]) -> Self {
        let fronts = blocks
            .iter()
            .map(|b| {
                let mut f: Vec<(f64, [u64; 2])> =
                    keep_fewer_than(b.clone(), dims, Key::CostsIds, 1).into_iter().map(|p| (p.score, p.cost)).collect();
                f.sort_by(|a, b| a.0.total_cmp(&b.0));
                f
            })
            .collect();
        let cheapest = blocks
            .iter()
            .map(|b| {
                let min = |d: usize| b.iter().map(|p| p.cost[d]).min().unwrap_or(0);
                [min(0), min(1)]
            })
            .collect();
        CompletionBound { fronts, cheapest, limits: limits.map(|l| l.unwrap_or(u64::MAX)) }
    }

    /// A lower bound on the score of every completion of a partial with `score` and `cost`
    /// that ends at block `j` (∞ when no completion fits).
    pub fn min_total(&self, score: f64, cost: [u64; 2], j: usize) -> f64 {
        let later = j + 1..self.fronts.len();
        // Cost of the partial plus the cheapest of every later block.
        let mut base = cost;
        for c in &self.cheapest[later.clone()] {
            base = [base[0].saturating_add(c[0]), base[1].saturating_add(c[1])];
        }
        let mut total = score;
        for i in later {
            let own = self.cheapest[i];
            // Room for block i: limit − (base − its own cheapest cost).
            let room: [u64; 2] = std::array::from_fn(|d| {
                if self.limits[d] == u64::MAX {
                    u64::MAX
                } else {
                    self.limits[d].saturating_sub(base[d] - own[d])
                }
            });
            match self.fronts[i].iter().find(|(_, c)| c[0] <= room[0] && c[1] <= room[1]) {
                Some((s, _)) => total += s,
                None => return f64::INFINITY,
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(score: f64, params: u64, flops: u64) -> Partial {
        Partial { score, cost: [params, flops], ids: vec![0] }
    }

    #[test]
    fn bound_takes_the_best_candidate_that_fits_the_room() {
        let blocks = vec![
            vec![p(0.0, 0, 0)],
            vec![p(1.0, 10, 10), p(2.0, 5, 5), p(3.0, 1, 1)],
            vec![p(0.5, 4, 4), p(0.25, 8, 8)],
        ];
        let b = CompletionBound::new(&blocks, &[0], [Some(20), None]);
        // After block 0 with cost 0: block 1 has room 20 − 4 → 1.0; block 2 room 20 − 1 → 0.25.
        assert_eq!(b.min_total(0.0, [0, 0], 0), 1.25);
        // Cost 10: block 1 room 6 → 2.0; block 2 room 9 → 0.25.
        assert_eq!(b.min_total(0.0, [10, 0], 0), 2.25);
        // Cost 14: block 1 room 2 → 3.0; block 2 room 5 → 0.5.
        assert_eq!(b.min_total(1.0, [14, 0], 0), 4.5);
        // Cost 16: nothing left fits with the cheapest of the other block.
        assert_eq!(b.min_total(0.0, [16, 0], 0), f64::INFINITY);
        // The last block: nothing later.
        assert_eq!(b.min_total(7.0, [99, 99], 2), 7.0);
        // Unconstrained: plain minima.
        let b = CompletionBound::new(&blocks, &[], [None, None]);
        assert_eq!(b.min_total(0.0, [1000, 1000], 0), 1.25);
    }
}
