//! The constrained search over the ratings: whole-network params and MACs are the fixed
//! part (stem and head) plus the chosen paths', so the fixed part is taken off the budget and
//! the blocks' paths go into the exact multiple-choice knapsack.

use super::files::{candidates, Choice, Rating};
use super::knapsack::{best_combinations, pareto_front, Budget};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::space::mbconv::{MbArch, MbNet, MbSpace};
use crate::train::FixedNet;
use crate::util::rng::Rng;

const WHAT: &str = "dna search";
/// Draws of the random baseline's rejection sampling before giving up.
const RANDOM_DRAWS: usize = 1_000_000;

/// Params and MACs of the fixed part of `space`'s networks (stem and head): an `MbNet` of the
/// first rated path of every block, less those paths' own counts.
pub fn fixed_cost(gpu: &Gpu, space: &MbSpace, ratings: &[Vec<Rating>]) -> Result<(u64, u64)> {
    let firsts: Vec<&Rating> = ratings
        .iter()
        .enumerate()
        .map(|(b, r)| r.first().ok_or_else(|| Error::invalid(WHAT, format!("block {} has no ratings", b + 1))))
        .collect::<Result<_>>()?;
    let arch = MbArch::parse(&firsts.iter().map(|r| r.path.as_str()).collect::<Vec<_>>().join("|"))?;
    let net = MbNet::new(gpu, space.clone(), &arch, 0)?;
    let (p, f): (u64, u64) = (firsts.iter().map(|r| r.params).sum(), firsts.iter().map(|r| r.flops).sum());
    Ok(((net.param_count() as u64).saturating_sub(p), net.flops().saturating_sub(f)))
}

/// The budget left for the blocks once the fixed part is paid; an error if it does not fit.
pub fn block_budget(budget: &Budget, fixed: (u64, u64)) -> Result<Budget> {
    let left = |limit: Option<u64>, cost: u64, key: &str, what: &str| -> Result<Option<u64>> {
        match limit {
            Some(m) if m < cost => Err(Error::invalid(
                WHAT,
                format!(
                    "search.{key} = {m} is below the {cost} {what} of the network's fixed part (stem and head) \
                     alone: raise it above {cost}"
                ),
            )),
            Some(m) => Ok(Some(m - cost)),
            None => Ok(None),
        }
    };
    Ok(Budget {
        max_params: left(budget.max_params, fixed.0, "max_params", "parameters")?,
        max_flops: left(budget.max_flops, fixed.1, "max_flops", "multiply-accumulates")?,
    })
}

/// A short name of a budget for file names: `params-120000`, `flops-5000000`,
/// `params-120000_flops-5000000` or `unlimited`.
pub fn budget_label(budget: &Budget) -> String {
    let parts: Vec<String> = [("params", budget.max_params), ("flops", budget.max_flops)]
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n}-{v}")))
        .collect();
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join("_")
    }
}

/// What the search found: the best `top_k` architectures (whole-network params and MACs)
/// and each block's Pareto front within the budget.
pub struct Found {
    /// Best first.
    pub choices: Vec<Choice>,
    /// Per block, its Pareto front of rated paths.
    pub fronts: Vec<Vec<Rating>>,
}

/// The `top_k` best architectures within `budget` (whole network: `fixed` included).
pub fn search(ratings: &[Vec<Rating>], fixed: (u64, u64), budget: &Budget, top_k: usize) -> Result<Found> {
    let inner = block_budget(budget, fixed)?;
    let blocks: Vec<_> = ratings.iter().map(|r| candidates(r)).collect();
    let combos = best_combinations(&blocks, &inner, top_k)?;
    let choices = combos
        .iter()
        .map(|c| {
            let mut ch = Choice::from_combination(c, ratings)?;
            (ch.params, ch.flops) = (ch.params + fixed.0, ch.flops + fixed.1);
            Ok(ch)
        })
        .collect::<Result<Vec<_>>>()?;
    let fronts = blocks
        .iter()
        .zip(ratings)
        .map(|(cands, r)| pareto_front(cands, &inner).iter().map(|c| r[c.id].clone()).collect())
        .collect();
    Ok(Found { choices, fronts })
}

/// A random architecture within `budget`: each block's path drawn uniformly, redrawn until
/// the whole network fits (seeded rejection sampling, so uniform over the fitting ones).
pub fn random_within(ratings: &[Vec<Rating>], fixed: (u64, u64), budget: &Budget, seed: u64) -> Result<Choice> {
    let inner = block_budget(budget, fixed)?;
    let mut rng = Rng::new(seed ^ 0x0052_414e_444f_4d00);
    for _ in 0..RANDOM_DRAWS {
        let picks: Vec<&Rating> = ratings.iter().map(|r| &r[rng.below(r.len())]).collect();
        let params: u64 = picks.iter().map(|r| r.params).sum();
        let flops: u64 = picks.iter().map(|r| r.flops).sum();
        if inner.max_params.is_none_or(|m| params <= m) && inner.max_flops.is_none_or(|m| flops <= m) {
            return Ok(Choice {
                arch: picks.iter().map(|r| r.path.as_str()).collect::<Vec<_>>().join("|"),
                score: picks.iter().map(|r| r.score).sum(),
                params: params + fixed.0,
                flops: flops + fixed.1,
            });
        }
    }
    Err(Error::invalid(
        WHAT,
        format!("no random architecture within the budget in {RANDOM_DRAWS} draws: the budget admits too few"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str, score: f64, params: u64, flops: u64) -> Rating {
        Rating { path: path.into(), score, params, flops }
    }

    #[test]
    fn fixed_part_is_paid_first_and_labels_name_the_budget() {
        let ratings =
            vec![vec![r("a", 1.0, 10, 100), r("b", 0.5, 30, 300)], vec![r("c", 1.0, 5, 50), r("d", 0.2, 50, 500)]];
        let budget = Budget { max_params: Some(100 + 40), max_flops: None };
        let found = search(&ratings, (100, 1000), &budget, 3).unwrap();
        // 30 + 5 = 35 and 10 + 5 = 15 fit in 40; anything with d (50) does not.
        assert_eq!(found.choices[0].arch, "b|c");
        assert_eq!((found.choices[0].params, found.choices[0].flops), (135, 1350));
        assert_eq!(found.choices.len(), 2);
        let e = search(&ratings, (100, 1000), &Budget { max_params: Some(99), max_flops: None }, 1);
        assert!(e.err().unwrap().to_string().contains("fixed part"));
        assert_eq!(budget_label(&budget), "params-140");
        assert_eq!(budget_label(&Budget::NONE), "unlimited");
        assert_eq!(budget_label(&Budget { max_params: Some(1), max_flops: Some(2) }), "params-1_flops-2");
        let c = random_within(&ratings, (100, 1000), &budget, 7).unwrap();
        assert!(c.params <= 140 && !c.arch.contains('d'), "{c:?}");
    }
}
