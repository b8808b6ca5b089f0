//! CPU references of the optimizer updates (f64 arithmetic), written after PyTorch's
//! single-tensor `torch.optim.SGD` and `torch.optim.Adam` code paths. The hyper-parameters
//! are read from the GPU optimizer structs so both sides always use the same ones.

use super::{Adam, Sgd};

/// One SGD step on one parameter. `buf` is the momentum buffer, `None` before the first
/// step (PyTorch then starts it as a copy of `g'`). Returns (new param, new buffer).
pub fn sgd_step(cfg: &Sgd, p: &[f32], g: &[f32], buf: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
    let mu = cfg.momentum as f64;
    let wd = cfg.weight_decay as f64;
    let mut new_p = Vec::with_capacity(p.len());
    let mut new_buf = Vec::with_capacity(p.len());
    for i in 0..p.len() {
        let w = p[i] as f64;
        let gi = g[i] as f64 + wd * w;
        let b = match buf {
            Some(b) => mu * b[i] as f64 + gi,
            None => gi,
        };
        let d = if mu == 0.0 {
            gi
        } else if cfg.nesterov {
            gi + mu * b
        } else {
            b
        };
        new_p.push((w - cfg.lr as f64 * d) as f32);
        new_buf.push(b as f32);
    }
    (new_p, new_buf)
}

/// One Adam step number `t` (1-based) on one parameter with moments `m`, `v`.
/// Returns (new param, new m, new v).
pub fn adam_step(cfg: &Adam, t: u64, p: &[f32], g: &[f32], m: &[f32], v: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..p.len() {
        let w = p[i] as f64;
        let gi = g[i] as f64 + cfg.weight_decay as f64 * w;
        let mi = b1 * m[i] as f64 + (1.0 - b1) * gi;
        let vi = b2 * v[i] as f64 + (1.0 - b2) * gi * gi;
        let upd = cfg.lr as f64 * (mi / bc1) / ((vi / bc2).sqrt() + cfg.eps as f64);
        out.0.push((w - upd) as f32);
        out.1.push(mi as f32);
        out.2.push(vi as f32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_momentum_by_hand() {
        // p = 1, g = 0.5, wd = 0.1 ⇒ g' = 0.6; first buf = 0.6; p = 1 − 0.1·0.6 = 0.94
        let cfg = Sgd::new(0.1, 0.9, false, 0.1);
        let (p, b) = sgd_step(&cfg, &[1.0], &[0.5], None);
        assert!((p[0] - 0.94).abs() < 1e-7 && (b[0] - 0.6).abs() < 1e-7);
        // Second step, g = 0.5: g' = 0.594; buf = 0.9·0.6 + 0.594 = 1.134; p = 0.94 − 0.1134
        let (p, b) = sgd_step(&cfg, &p, &[0.5], Some(&b));
        assert!((b[0] - 1.134).abs() < 1e-6 && (p[0] - 0.8266).abs() < 1e-6);
    }

    #[test]
    fn nesterov_looks_ahead_and_zero_buffer_equals_first_step_copy() {
        // buf = g' = 2, d = g' + μ·buf = 2 + 0.5·2 = 3, p = 0 − 0.1·3
        let cfg = Sgd::new(0.1, 0.5, true, 0.0);
        let (p, _) = sgd_step(&cfg, &[0.0], &[2.0], None);
        assert!((p[0] + 0.3).abs() < 1e-7);
        // The GPU starts from a zero buffer: μ·0 + g' = g', the same first step.
        assert_eq!(sgd_step(&cfg, &[0.0], &[2.0], Some(&[0.0])), sgd_step(&cfg, &[0.0], &[2.0], None));
    }

    #[test]
    fn adam_first_step_moves_by_lr_times_sign() {
        // t = 1: m̂ = g, v̂ = g² ⇒ Δp = −lr · g / (|g| + eps) ≈ −lr · sign(g)
        let cfg = Adam::new(0.01, 0.9, 0.999, 1e-8, 0.0);
        let (p, m, v) = adam_step(&cfg, 1, &[1.0, 1.0], &[3.0, -0.2], &[0.0; 2], &[0.0; 2]);
        assert!((p[0] - 0.99).abs() < 1e-6 && (p[1] - 1.01).abs() < 1e-6);
        assert!((m[0] - 0.3).abs() < 1e-6 && (v[1] - 0.00004).abs() < 1e-9);
    }
}
