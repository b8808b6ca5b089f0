//! Exact multiple-choice knapsack: pick one candidate per block so that the summed score
//! is smallest and the summed params and FLOPs stay within a budget — the last step of
//! DNA (DESIGN.md §5), where each block's candidates are its rated paths.
//!
//! # Method
//! 1. Each block keeps only the candidates that can be part of a feasible combination:
//!    its cost plus the cheapest cost of every other block is within the budget.
//! 2. Each block then keeps only the candidates dominated by fewer than `k` others
//!    ([`super::dominance`]: score ≤, every *constrained* cost ≤, and earlier in the
//!    tie-break key). Unconstrained costs play no part.
//! 3. Blocks are merged from the left into partial combinations (costs and scores summed);
//!    partials that cannot be completed within the budget (their cost plus the cheapest
//!    cost of the blocks still to come is over it) are dropped, and so are partials
//!    dominated by `k` or more other partials.
//! 4. The partials left after the last block are complete; sorted, the first `k` are the
//!    answer.
//!
//! Why it is exact: if `P` is dominated by `Q₁…Q_k`, then for any rest `R` of the blocks,
//! `Qᵢ + R` is within the budget whenever `P + R` is, and ranks strictly before it, so
//! `P + R` has `k` better combinations and is not in the top k. Every prefix of a top-k
//! combination therefore survives each filter.
//!
//! Bounding (speed only, the answer is the same): on large instances a beam-search pilot
//! first finds `k` feasible combinations; the k-th one's score `U` bounds the answer's
//! scores. Step 3 then also drops partials whose score plus a lower bound on what the later
//! blocks must add ([`super::bound`]: each later block's best score among the candidates
//! that fit the room left) is above `U`: every completion scores above `U`, below the k
//! pilot combinations, so none is in the top k.
//!
//! # Ranking
//! Combinations are ranked by summed score (summed block by block from the left), then by
//! the constrained costs (params before FLOPs), then by the ids lexicographically. The
//! tie-break therefore depends on the budget: with no constraint, equal scores are ordered
//! by ids alone.
//!
//! # Cost
//! A merge of `a` partials with `b` candidates produces at most `a·b` partials and filters
//! them in `O(n log n + n·k·log n)`. With one constraint (or none) the survivors are few
//! (a k-skyline in 2-D); with two they form a 3-D k-skyline, larger, which the bound cuts
//! down. 4 blocks × 2058 paths take well under 0.1 s with either budget kind
//! (`tests/dna_search.rs` prints the times).

use serde::{Deserialize, Serialize};

use super::bound::CompletionBound;
use super::dominance::{cmp_key, cmp_rank, keep_fewer_than, Key, Partial};
use crate::{Error, Result};

const WHAT: &str = "dna search";
/// Above this many combinations of the filtered blocks, a pilot run first bounds the scores.
const PILOT_ABOVE: f64 = 10_000.0;
/// Partials the pilot keeps per block.
const PILOT_BEAM: usize = 128;
/// Cost dimension names, in `Partial::cost` order.
const DIM_NAMES: [&str; 2] = ["params", "flops"];

/// One choice of a block (a path), with what it costs and how well it did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Caller's id of the choice (unique within its block; the path's index, say).
    pub id: usize,
    /// Rating: lower is better. Must be finite.
    pub score: f64,
    /// Parameters.
    pub params: u64,
    /// FLOPs (multiply-accumulates).
    pub flops: u64,
}

/// Upper limits on the whole network's summed params and FLOPs (`None` = no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// At most this many parameters.
    pub max_params: Option<u64>,
    /// At most this many FLOPs (multiply-accumulates).
    pub max_flops: Option<u64>,
}

/// One candidate per block with the sums of their score and costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Combination {
    /// Candidate id of each block, in block order.
    pub ids: Vec<usize>,
    /// Σ scores (summed from the first block on).
    pub score: f64,
    /// Σ params.
    pub params: u64,
    /// Σ FLOPs.
    pub flops: u64,
}

impl Budget {
    /// No limits.
    pub const NONE: Budget = Budget { max_params: None, max_flops: None };

    /// The limit per cost dimension, in `Partial::cost` order.
    fn limits(&self) -> [Option<u64>; 2] {
        [self.max_params, self.max_flops]
    }

    /// The constrained cost dimensions (0 = params, 1 = flops).
    fn dims(&self) -> Vec<usize> {
        (0..2).filter(|&d| self.limits()[d].is_some()).collect()
    }

    /// Whether `cost` plus `rest` (the cheapest completion) is within every limit.
    fn allows(&self, cost: [u64; 2], rest: [u64; 2]) -> bool {
        self.limits().iter().enumerate().all(|(d, lim)| lim.is_none_or(|m| cost[d].saturating_add(rest[d]) <= m))
    }
}

impl From<&Candidate> for Partial {
    fn from(c: &Candidate) -> Self {
        Partial { score: c.score, cost: [c.params, c.flops], ids: vec![c.id] }
    }
}

impl From<Partial> for Combination {
    fn from(p: Partial) -> Self {
        Combination { ids: p.ids, score: p.score, params: p.cost[0], flops: p.cost[1] }
    }
}

/// The `top_k` best combinations (one candidate per block, smallest summed score first)
/// within `budget`; fewer when fewer exist. Exact (see the module doc).
///
/// Errors: no blocks, an empty block, `top_k = 0`, a non-finite score, an id repeated
/// within a block, or a budget no combination meets (the message gives the smallest
/// achievable params and FLOPs).
pub fn best_combinations(blocks: &[Vec<Candidate>], budget: &Budget, top_k: usize) -> Result<Vec<Combination>> {
    solve(blocks, budget, top_k, PILOT_ABOVE)
}

/// [`best_combinations`], running the pilot when the filtered blocks have more than
/// `pilot_above` combinations.
fn solve(blocks: &[Vec<Candidate>], budget: &Budget, top_k: usize, pilot_above: f64) -> Result<Vec<Combination>> {
    check_input(blocks, top_k)?;
    let dims = budget.dims();
    let cheapest: Vec<[u64; 2]> = blocks.iter().map(|b| cheapest_costs(b)).collect();
    check_feasible(&cheapest, budget)?;
    // rest[j] = cheapest cost of blocks j+1.. (what any completion of a prefix adds).
    let mut rest = vec![[0u64; 2]; blocks.len()];
    for j in (0..blocks.len().saturating_sub(1)).rev() {
        rest[j] = add(rest[j + 1], cheapest[j + 1]);
    }
    // Steps 1–2: per block, feasible on its own (with the cheapest other blocks), then k-filter.
    let filtered: Vec<Vec<Partial>> = blocks
        .iter()
        .enumerate()
        .map(|(j, block)| {
            let others = cheapest.iter().enumerate().filter(|&(i, _)| i != j).fold([0, 0], |acc, (_, &c)| add(acc, c));
            let items = block.iter().map(Partial::from).filter(|p| budget.allows(p.cost, others)).collect();
            keep_fewer_than(items, &dims, Key::CostsIds, top_k)
        })
        .collect();

    // A beam-search pilot (keeping only the best partials by score at each block) finds k
    // feasible combinations quickly; the k-th one's score bounds the answer from above.
    let product = filtered.iter().map(|b| b.len() as f64).product::<f64>();
    let bound = if product > pilot_above {
        let pilot = merge_all(&filtered, budget, &rest, &dims, top_k, f64::INFINITY, PILOT_BEAM.max(8 * top_k));
        pilot.get(top_k - 1).map_or(f64::INFINITY, |p| p.score)
    } else {
        f64::INFINITY
    };

    let best = merge_all(&filtered, budget, &rest, &dims, top_k, bound, usize::MAX);
    if best.is_empty() {
        return Err(Error::invalid(WHAT, infeasible_message(&cheapest, budget)));
    }
    Ok(best.into_iter().map(Combination::from).collect())
}

/// Steps 3–4: merges the blocks from the left, keeping partials that fit the budget (with
/// the cheapest completion `rest[j]`), whose score bound does not exceed `bound`, and that
/// fewer than `k` others dominate; returns the best `k` complete ones, ranked. With a
/// `beam` below `usize::MAX` only the best `beam` partials by score go on to the next block
/// (a heuristic: the result is then feasible but not necessarily the best).
///
/// `bound` is an upper limit on the k-th best score (`∞` for none): a partial whose score
/// plus the smallest score of every later block (summed in the same order, so rounding
/// cannot cross it) is above it has k better combinations already.
fn merge_all(
    blocks: &[Vec<Partial>],
    budget: &Budget,
    rest: &[[u64; 2]],
    dims: &[usize],
    k: usize,
    bound: f64,
    beam: usize,
) -> Vec<Partial> {
    let min_score: Vec<f64> = blocks.iter().map(|b| b.iter().map(|p| p.score).fold(f64::INFINITY, f64::min)).collect();
    // Cheap bound (ignores costs, monotone in the candidate's score: the inner loop stops at it).
    let plain_bound = |score: f64, j: usize| min_score[j + 1..].iter().fold(score, |s, m| s + m);
    // Tighter bound that knows the room the budget leaves each later block.
    let completion = bound.is_finite().then(|| CompletionBound::new(blocks, dims, budget.limits()));
    let mut partials = vec![Partial { score: 0.0, cost: [0, 0], ids: Vec::new() }];
    for (j, block) in blocks.iter().enumerate() {
        // By score, so the inner loop can stop at the first candidate over the bound.
        let mut by_score: Vec<&Partial> = block.iter().collect();
        by_score.sort_by(|a, b| a.score.total_cmp(&b.score));
        let mut next = Vec::new();
        for p in &partials {
            for c in &by_score {
                let score = p.score + c.score;
                if plain_bound(score, j) > bound {
                    break;
                }
                let cost = add(p.cost, c.cost);
                let hopeless = completion.as_ref().is_some_and(|b| b.min_total(score, cost, j) > bound);
                if !hopeless && budget.allows(cost, rest[j]) {
                    let mut ids = Vec::with_capacity(blocks.len());
                    ids.extend_from_slice(&p.ids);
                    ids.push(c.ids[0]);
                    next.push(Partial { score, cost, ids });
                }
            }
        }
        partials = keep_fewer_than(next, dims, Key::CostsIds, k);
        if partials.len() > beam {
            partials.sort_by(|a, b| cmp_rank(a, b, dims));
            partials.truncate(beam);
        }
    }
    partials.sort_by(|a, b| cmp_rank(a, b, dims));
    partials.truncate(k);
    partials
}

/// The candidates of one block that no other candidate dominates (score ≤ and every
/// constrained cost ≤, one of them strictly or the same values with a smaller id), after
/// dropping those over the budget on their own. With no constraint the front is taken over
/// both params and FLOPs, which is what one wants to draw. Sorted by cost (params first
/// when constrained), then score.
pub fn pareto_front(cands: &[Candidate], budget: &Budget) -> Vec<Candidate> {
    let mut dims = budget.dims();
    if dims.is_empty() {
        dims = vec![0, 1];
    }
    let items: Vec<Partial> = cands.iter().map(Partial::from).filter(|p| budget.allows(p.cost, [0, 0])).collect();
    let mut front = keep_fewer_than(items, &dims, Key::CostsScoreIds, 1);
    front.sort_by(|a, b| cmp_key(a, b, &dims, Key::CostsScoreIds));
    front.into_iter().map(|p| Candidate { id: p.ids[0], score: p.score, params: p.cost[0], flops: p.cost[1] }).collect()
}

fn add(a: [u64; 2], b: [u64; 2]) -> [u64; 2] {
    [a[0].saturating_add(b[0]), a[1].saturating_add(b[1])]
}

/// The smallest params and the smallest FLOPs of a block (each on its own).
fn cheapest_costs(block: &[Candidate]) -> [u64; 2] {
    let min = |f: fn(&Candidate) -> u64| block.iter().map(f).min().unwrap_or(0);
    [min(|c| c.params), min(|c| c.flops)]
}

fn check_input(blocks: &[Vec<Candidate>], top_k: usize) -> Result<()> {
    if blocks.is_empty() {
        return Err(Error::invalid(WHAT, "no blocks to choose from"));
    }
    if top_k == 0 {
        return Err(Error::invalid(WHAT, "top_k must be at least 1"));
    }
    for (j, block) in blocks.iter().enumerate() {
        if block.is_empty() {
            return Err(Error::invalid(WHAT, format!("block {} has no candidates (rate its paths first)", j + 1)));
        }
        let mut ids: Vec<usize> = block.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(WHAT, format!("block {}: candidate id {} appears twice", j + 1, w[0])));
        }
        if let Some(c) = block.iter().find(|c| !c.score.is_finite()) {
            return Err(Error::invalid(
                WHAT,
                format!(
                    "block {}: candidate {} has score {} (scores must be finite; re-rate it)",
                    j + 1,
                    c.id,
                    c.score
                ),
            ));
        }
    }
    Ok(())
}

/// Fails when one limit alone is below the cheapest network.
fn check_feasible(cheapest: &[[u64; 2]], budget: &Budget) -> Result<()> {
    let total = cheapest.iter().fold([0, 0], |acc, &c| add(acc, c));
    for (d, lim) in budget.limits().iter().enumerate() {
        if let Some(m) = lim.filter(|&m| total[d] > m) {
            let name = DIM_NAMES[d];
            return Err(Error::invalid(
                WHAT,
                format!(
                    "no combination fits max_{name} = {m}: the smallest achievable is {} {name} (each block's \
                     cheapest path); raise search.max_{name}",
                    total[d]
                ),
            ));
        }
    }
    Ok(())
}

/// Why nothing was found although each limit alone is achievable.
fn infeasible_message(cheapest: &[[u64; 2]], budget: &Budget) -> String {
    let total = cheapest.iter().fold([0, 0], |acc, &c| add(acc, c));
    format!(
        "no combination meets max_params = {} and max_flops = {} together: the smallest achievable are {} params \
         and {} flops, but not in the same network; raise one of the limits",
        budget.max_params.map_or("none".into(), |v| v.to_string()),
        budget.max_flops.map_or("none".into(), |v| v.to_string()),
        total[0],
        total[1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    /// The pilot's bound only prunes: with it forced on, the answers equal those without it
    /// (which `tests/dna_search.rs` checks against brute force).
    #[test]
    fn pilot_bound_changes_nothing() {
        let mut rng = Rng::new(11);
        for case in 0..300 {
            let blocks: Vec<Vec<Candidate>> = (0..2 + case % 3)
                .map(|_| {
                    (0..1 + rng.below(15))
                        .map(|id| Candidate {
                            id,
                            score: rng.below(10) as f64 * 0.1,
                            params: rng.below(8) as u64,
                            flops: rng.below(8) as u64,
                        })
                        .collect()
                })
                .collect();
            let n = blocks.len() as u64;
            let (p, f) = (Some(rng.below(8 * n as usize) as u64), Some(rng.below(8 * n as usize) as u64));
            for budget in [Budget { max_params: p, max_flops: f }, Budget { max_params: p, max_flops: None }] {
                for k in [1, 3, 8] {
                    let plain = solve(&blocks, &budget, k, f64::INFINITY).map_err(|e| e.to_string());
                    let piloted = solve(&blocks, &budget, k, 0.0).map_err(|e| e.to_string());
                    assert_eq!(plain, piloted, "case {case} {budget:?} k {k}");
                }
            }
        }
    }
}
