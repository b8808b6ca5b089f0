//! The exact constrained search of DNA (`dna::knapsack`) against brute force.

use std::cmp::Ordering;
use std::time::Instant;

use wgnas::dna::{best_combinations, pareto_front, Budget, Candidate, Combination};
use wgnas::util::rng::Rng;

/// Random blocks with small integer-ish costs and scores, so that ties are frequent.
fn random_blocks(rng: &mut Rng, blocks: usize, max_cands: usize) -> Vec<Vec<Candidate>> {
    (0..blocks)
        .map(|_| {
            let n = 1 + rng.below(max_cands);
            // Ids are unique within a block but not 0..n in order.
            let mut ids: Vec<usize> = (0..n).map(|i| i * 3 + 7).collect();
            rng.shuffle(&mut ids);
            ids.into_iter()
                .map(|id| Candidate {
                    id,
                    // Some scores are not dyadic (0.1 steps), so sums round.
                    score: rng.below(8) as f64 * if rng.below(2) == 0 { 0.5 } else { 0.1 },
                    params: rng.below(6) as u64 * 10,
                    flops: rng.below(6) as u64 * 100,
                })
                .collect()
        })
        .collect()
}

/// The documented ranking: score, then the constrained costs (params first), then ids.
fn rank(a: &Combination, b: &Combination, budget: &Budget) -> Ordering {
    let mut o = a.score.total_cmp(&b.score);
    if budget.max_params.is_some() {
        o = o.then(a.params.cmp(&b.params));
    }
    if budget.max_flops.is_some() {
        o = o.then(a.flops.cmp(&b.flops));
    }
    o.then_with(|| a.ids.cmp(&b.ids))
}

/// Every combination within the budget, ranked, first `k`.
fn brute_force(blocks: &[Vec<Candidate>], budget: &Budget, k: usize) -> Vec<Combination> {
    let mut all = vec![Combination { ids: vec![], score: 0.0, params: 0, flops: 0 }];
    for block in blocks {
        all = all
            .iter()
            .flat_map(|p| {
                block.iter().map(move |c| {
                    let mut ids = p.ids.clone();
                    ids.push(c.id);
                    Combination { ids, score: p.score + c.score, params: p.params + c.params, flops: p.flops + c.flops }
                })
            })
            .collect();
    }
    all.retain(|c| budget.max_params.is_none_or(|m| c.params <= m) && budget.max_flops.is_none_or(|m| c.flops <= m));
    all.sort_by(|a, b| rank(a, b, budget));
    all.truncate(k);
    all
}

fn budgets(rng: &mut Rng, blocks: usize) -> [Budget; 4] {
    // Limits around the middle of the achievable range, so that some instances are tight.
    let p = Some(rng.below(blocks * 50 + 1) as u64);
    let f = Some(rng.below(blocks * 500 + 1) as u64);
    [
        Budget { max_params: p, max_flops: None },
        Budget { max_params: None, max_flops: f },
        Budget { max_params: p, max_flops: f },
        Budget::NONE,
    ]
}

#[test]
fn matches_brute_force_on_small_random_instances() {
    let mut rng = Rng::new(2024);
    let (mut solved, mut infeasible) = (0, 0);
    for case in 0..400 {
        let blocks = random_blocks(&mut rng, 2 + case % 3, 12);
        for budget in budgets(&mut rng, blocks.len()) {
            for k in [1, 5] {
                let want = brute_force(&blocks, &budget, k);
                match best_combinations(&blocks, &budget, k) {
                    Ok(got) => {
                        assert_eq!(got, want, "case {case}, {budget:?}, k = {k}, blocks {blocks:?}");
                        solved += 1;
                    }
                    Err(e) => {
                        assert!(want.is_empty(), "case {case}: error {e} but brute force found {want:?}");
                        infeasible += 1;
                    }
                }
            }
        }
    }
    // Both outcomes were exercised.
    assert!(solved > 2000 && infeasible > 50, "solved {solved}, infeasible {infeasible}");
}

#[test]
fn infeasible_budgets_say_what_is_achievable() {
    let blocks = vec![
        vec![
            Candidate { id: 0, score: 1.0, params: 10, flops: 500 },
            Candidate { id: 1, score: 2.0, params: 50, flops: 100 },
        ],
        vec![Candidate { id: 0, score: 1.0, params: 5, flops: 50 }],
    ];
    let e = best_combinations(&blocks, &Budget { max_params: Some(14), max_flops: None }, 1).unwrap_err().to_string();
    assert!(e.contains("max_params = 14") && e.contains("smallest achievable is 15 params"), "{e}");
    let e = best_combinations(&blocks, &Budget { max_params: None, max_flops: Some(149) }, 1).unwrap_err().to_string();
    assert!(e.contains("150 flops"), "{e}");
    // Each limit alone is achievable, both together are not.
    let both = Budget { max_params: Some(20), max_flops: Some(200) };
    let e = best_combinations(&blocks, &both, 3).unwrap_err().to_string();
    assert!(e.contains("together") && e.contains("15 params") && e.contains("150 flops"), "{e}");
    // Exactly at the limits is feasible.
    let exact = Budget { max_params: Some(15), max_flops: Some(550) };
    let best = best_combinations(&blocks, &exact, 3).unwrap();
    assert_eq!(best, vec![Combination { ids: vec![0, 0], score: 2.0, params: 15, flops: 550 }]);
}

#[test]
fn bad_inputs_are_errors() {
    let c = |id, score| Candidate { id, score, params: 1, flops: 1 };
    let none = Budget::NONE;
    assert!(best_combinations(&[], &none, 1).unwrap_err().to_string().contains("no blocks"));
    let e = best_combinations(&[vec![c(0, 1.0)], vec![]], &none, 1).unwrap_err().to_string();
    assert!(e.contains("block 2 has no candidates"), "{e}");
    assert!(best_combinations(&[vec![c(0, 1.0)]], &none, 0).unwrap_err().to_string().contains("top_k"));
    let e = best_combinations(&[vec![c(0, 1.0), c(4, f64::NAN)]], &none, 1).unwrap_err().to_string();
    assert!(e.contains("candidate 4") && e.contains("NaN"), "{e}");
    let e = best_combinations(&[vec![c(3, 1.0), c(3, 2.0)]], &none, 1).unwrap_err().to_string();
    assert!(e.contains("id 3 appears twice"), "{e}");
}

#[test]
fn results_are_deterministic_whatever_the_input_order() {
    let mut rng = Rng::new(9);
    for _ in 0..50 {
        let blocks = random_blocks(&mut rng, 3, 12);
        let budget = Budget { max_params: Some(90), max_flops: None };
        let first = best_combinations(&blocks, &budget, 5);
        let mut shuffled = blocks.clone();
        for b in &mut shuffled {
            rng.shuffle(b);
        }
        let again = best_combinations(&shuffled, &budget, 5);
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
    }
}

#[test]
fn pareto_front_matches_the_definition() {
    let mut rng = Rng::new(77);
    for _ in 0..200 {
        let cands = random_blocks(&mut rng, 1, 20).remove(0);
        for budget in budgets(&mut rng, 1) {
            let front = pareto_front(&cands, &budget);
            let dims: Vec<fn(&Candidate) -> u64> = match (budget.max_params.is_some(), budget.max_flops.is_some()) {
                (true, false) => vec![|c| c.params],
                (false, true) => vec![|c| c.flops],
                _ => vec![|c| c.params, |c| c.flops],
            };
            let fits = |c: &Candidate| {
                budget.max_params.is_none_or(|m| c.params <= m) && budget.max_flops.is_none_or(|m| c.flops <= m)
            };
            let key = |c: &Candidate| (dims.iter().map(|f| f(c)).collect::<Vec<_>>(), c.score, c.id);
            let dominates = |q: &Candidate, p: &Candidate| {
                q.score <= p.score
                    && dims.iter().all(|f| f(q) <= f(p))
                    && key(q).partial_cmp(&key(p)) == Some(Ordering::Less)
            };
            let mut want: Vec<Candidate> = cands
                .iter()
                .filter(|p| fits(p) && !cands.iter().any(|q| fits(q) && dominates(q, p)))
                .copied()
                .collect();
            want.sort_by(|a, b| key(a).partial_cmp(&key(b)).unwrap_or(Ordering::Equal));
            assert_eq!(front, want, "{budget:?}");
            // On a front, a later point that costs no less in every dimension scores better.
            for w in front.windows(2) {
                if dims.iter().all(|f| f(&w[0]) <= f(&w[1])) {
                    assert!(w[1].score < w[0].score, "{:?}", w);
                }
            }
        }
    }
}

/// Blocks of the mbconv size: 2058 paths with params and FLOPs that grow together (wider
/// and deeper paths cost more in both) and scores that fall with cost, plus noise.
fn mbconv_like_blocks(rng: &mut Rng, blocks: usize) -> Vec<Vec<Candidate>> {
    (0..blocks)
        .map(|b| {
            (0..2058)
                .map(|id| {
                    let size = rng.uniform();
                    let params = (20_000.0 * (b + 1) as f64 * (0.2 + size + 0.3 * rng.uniform())) as u64;
                    let flops = (3_000_000.0 * (0.2 + size + 0.3 * rng.uniform())) as u64;
                    let score = 1.0 - 0.5 * size + 0.2 * rng.uniform();
                    Candidate { id, score, params, flops }
                })
                .collect()
        })
        .collect()
}

#[test]
fn full_size_instances_solve_quickly() {
    let mut rng = Rng::new(5);
    for nblocks in [3, 4] {
        let blocks = mbconv_like_blocks(&mut rng, nblocks);
        let total_params: u64 = blocks.iter().map(|b| b.iter().map(|c| c.params).sum::<u64>() / b.len() as u64).sum();
        let total_flops: u64 = blocks.iter().map(|b| b.iter().map(|c| c.flops).sum::<u64>() / b.len() as u64).sum();
        for budget in [
            Budget { max_params: Some(total_params), max_flops: None },
            Budget { max_params: None, max_flops: Some(total_flops) },
            Budget { max_params: Some(total_params), max_flops: Some(total_flops) },
            Budget { max_params: Some(total_params * 13 / 10), max_flops: Some(total_flops * 13 / 10) },
            Budget::NONE,
        ] {
            let t = Instant::now();
            let best = best_combinations(&blocks, &budget, 5).unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!("{nblocks} x 2058 paths, {budget:?}: {secs:.3} s, best score {:.4}", best[0].score);
            assert_eq!(best.len(), 5);
            assert!(best.windows(2).all(|w| w[0].score <= w[1].score));
            assert!(best
                .iter()
                .all(|c| budget.max_params.is_none_or(|m| c.params <= m)
                    && budget.max_flops.is_none_or(|m| c.flops <= m)));
        }
    }
}
