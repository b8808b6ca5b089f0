//! The β-DARTS regularizer (β-decay), usable with any strategy.
//!
//! For an α tensor of E edges × K ops the penalty and its gradient are
//!
//! `R(α) = λ_β · (1/E) · Σ_e logsumexp(α_e)`,  `∂R/∂α_e = λ_β · softmax(α_e) / E`.
//!
//! A model with several α tensors (e.g. normal and reduction cells) gets the sum of one
//! such term per tensor. The strategies add `∂R/∂α` to the α gradient before the Adam
//! step; the penalty value itself is never needed on the GPU.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{eltwise, mix};
use crate::tensor::Tensor;

/// `(E, K)` of an α tensor: K is the last dimension, E the product of the others.
pub fn rows_cols(alpha: &Tensor) -> Result<(usize, usize)> {
    let k = alpha.shape().last().copied().unwrap_or(0);
    if k == 0 || alpha.numel() == 0 {
        return Err(Error::shape("beta_reg", format!("α '{}' {:?} is empty", alpha.name(), alpha.shape())));
    }
    Ok((alpha.numel() / k, k))
}

/// `λ · softmax(α_e) / E` row-wise, shaped like `alpha` (computed on the GPU).
pub fn grad(gpu: &Gpu, alpha: &Tensor, lambda: f32) -> Result<Tensor> {
    let (e, k) = rows_cols(alpha)?;
    let s = mix::softmax_rows_forward(gpu, &alpha.reshape(&[e, k])?)?;
    eltwise::scale(gpu, &s, lambda / e as f32)?.reshape(alpha.shape())
}

/// CPU reference of the penalty, in f64: `λ · (1/E) Σ_e logsumexp(α_e)` over rows of `k`.
pub fn penalty_cpu(alpha: &[f32], k: usize, lambda: f32) -> f64 {
    let rows: Vec<&[f32]> = alpha.chunks(k).collect();
    let sum: f64 = rows
        .iter()
        .map(|r| {
            let m = r.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            m + r.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln()
        })
        .sum();
    lambda as f64 * sum / rows.len().max(1) as f64
}

/// CPU reference of the gradient: `λ · softmax(α_e) / E` row-wise.
pub fn grad_cpu(alpha: &[f32], k: usize, lambda: f32) -> Vec<f32> {
    let e = alpha.len() / k.max(1);
    alpha
        .chunks(k)
        .flat_map(|r| {
            let m = r.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let z: f64 = r.iter().map(|&v| (v as f64 - m).exp()).sum();
            r.iter().map(move |&v| (lambda as f64 * (v as f64 - m).exp() / z / e as f64) as f32).collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_close_f64, finite_diff};
    use crate::util::rng::Rng;

    #[test]
    fn grad_reference_matches_finite_differences() {
        // ∂/∂α_ek [λ/E Σ_e' lse(α_e')] = λ/E · exp(α_ek) / Σ_j exp(α_ej)
        let (e, k, lambda) = (3, 5, 0.7);
        let a = Rng::new(4).normal_vec(e * k, 2.0);
        let fd = finite_diff(&a, |a| penalty_cpu(a, k, lambda), 1e-2);
        assert_close_f64("beta grad", &grad_cpu(&a, k, lambda), &fd, 1e-4);
    }

    #[test]
    fn penalty_is_stable_for_large_alphas() {
        let p = penalty_cpu(&[1000.0, 1000.0], 2, 1.0);
        assert!((p - (1000.0 + 2f64.ln())).abs() < 1e-9);
    }
}
