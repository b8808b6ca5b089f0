// BatchNorm2d kernels (NCHW, statistics per channel over N, H, W).
//
// Per-channel reductions split each channel's M = N·H·W elements into `chunks` chunks of
// `chunk_len` elements; one 256-wide workgroup reduces one (channel, chunk) pair with a
// tree in workgroup memory and writes a partial pair, and a finalize kernel (one thread per
// channel) combines a channel's partials. This keeps many workgroups busy when C is small
// and M is large, without float atomics.
//
// Entry points, in the order a step uses them:
//   stats_partial            x                       → part = (chunk mean, chunk M2) per chunk
//   stats_finalize[_running] part                    → mean, invstd (and running stats, in place)
//   eval_stats               running mean/var        → mean, invstd  (copies, for eval backward)
//   norm_fwd[_affine]        x, mean, invstd, γ, β   → out = (x − mean)·invstd·γ + β
//   grad_partial             x, dy, mean, invstd     → part = (Σ dy, Σ dy·x̂) per chunk
//   grad_finalize            part                    → dgamma = Σ dy·x̂, dbeta = Σ dy
//   dx_train[_affine]        dy, x, stats, sums, γ   → out = γ·invstd·(dy − Σdy/M − x̂·Σdy·x̂/M)
//   dx_eval[_affine]         dy, invstd, γ           → out = γ·invstd·dy
//
// With the override XHAT the backward kernels read x̂ itself from `x` (mean and the x̂ of
// grad_partial/dx_train come from it directly; invstd still scales dx).
//
// Variants are separate entry points (not flags) so that each binds only the tensors it
// touches: optional tensors (γ, β, running stats) then need no placeholder buffers.
// The grid may be 2-D; the linear workgroup index is wid.x + wid.y * nwg.x.

struct Params {
    n: u32,          // batch
    c: u32,          // channels
    hw: u32,         // H·W
    chunks: u32,     // chunks per channel (reductions)
    chunk_len: u32,  // elements per chunk (the last chunk may be shorter)
    total: u32,      // N·C·H·W
    eps: f32,
    momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(9) var<storage, read_write> part: array<f32>;    // [C, chunks, 2]
@group(0) @binding(10) var<storage, read_write> out: array<f32>;
@group(0) @binding(11) var<storage, read_write> dgamma: array<f32>; // also Σ dy·x̂ for dx
@group(0) @binding(12) var<storage, read_write> dbeta: array<f32>;  // also Σ dy for dx

// Set when the backward kernels are given the normalised output x̂ in place of x (a
// non-affine BN that keeps its output instead of its input, so no extra tensor is saved).
override XHAT: bool = false;

const WG: u32 = 256u;
const FWG: u32 = 64u;   // finalize kernels: one thread per channel

var<workgroup> red: array<vec2<f32>, WG>;

// Sum of `v` over the workgroup, returned to every invocation. The leading barrier makes
// back-to-back calls safe: nobody overwrites red[] while another still reads red[0].
fn reduce2(lid: u32, v: vec2<f32>) -> vec2<f32> {
    workgroupBarrier();
    red[lid] = v;
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
    }
    workgroupBarrier();
    return red[0];
}

// Address of the j-th element (0 ≤ j < N·H·W) of channel c.
fn addr(c: u32, j: u32) -> u32 {
    let n = j / p.hw;
    return (n * p.c + c) * p.hw + (j - n * p.hw);
}

// Element range [lo, hi) of chunk k.
fn chunk_range(k: u32) -> vec2<u32> {
    let m = p.n * p.hw;
    let lo = k * p.chunk_len;
    return vec2<u32>(lo, min(lo + p.chunk_len, m));
}

// Two-pass statistics of one chunk: its mean, then M2 = Σ (x − chunk mean)².
@compute @workgroup_size(256)
fn stats_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid3: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.c * p.chunks) { return; }
    let lid = lid3.x;
    let c = g / p.chunks;
    let r = chunk_range(g - c * p.chunks);
    var s = 0.0;
    for (var j = r.x + lid; j < r.y; j += WG) { s += x[addr(c, j)]; }
    let cm = reduce2(lid, vec2<f32>(s, 0.0)).x / f32(r.y - r.x);
    var q = 0.0;
    for (var j = r.x + lid; j < r.y; j += WG) {
        let d = x[addr(c, j)] - cm;
        q += d * d;
    }
    let m2 = reduce2(lid, vec2<f32>(q, 0.0)).x;
    if (lid == 0u) {
        part[2u * g] = cm;
        part[2u * g + 1u] = m2;
    }
}

// Combines channel c's chunk (mean, M2) pairs with Chan et al.'s parallel formula:
// δ = m_b − m_a, m = m_a + δ·n_b/n, M2 = M2_a + M2_b + δ²·n_a·n_b/n. Returns (mean, M2).
fn combine_stats(c: u32) -> vec2<f32> {
    var na = 0.0;
    var ma = 0.0;
    var qa = 0.0;
    for (var k = 0u; k < p.chunks; k++) {
        let r = chunk_range(k);
        let nb = f32(r.y - r.x);
        let i = 2u * (c * p.chunks + k);
        let mb = part[i];
        let nn = na + nb;
        let d = mb - ma;
        ma = ma + d * (nb / nn);
        qa = qa + part[i + 1u] + d * d * (na * nb / nn);
        na = nn;
    }
    return vec2<f32>(ma, qa);
}

// Batch mean and invstd = 1/√(var + eps), var = M2/M (biased, as PyTorch normalises).
fn finalize_at(c: u32) -> vec2<f32> {
    let s = combine_stats(c);
    mean[c] = s.x;
    invstd[c] = 1.0 / sqrt(s.y / f32(p.n * p.hw) + p.eps);
    return s;
}

@compute @workgroup_size(FWG)
fn stats_finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.c) { return; }
    finalize_at(gid.x);
}

// Also updates the running statistics in place, with the unbiased variance M2/(M − 1):
// r ← (1 − momentum)·r + momentum·batch.
@compute @workgroup_size(FWG)
fn stats_finalize_running(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    let s = finalize_at(c);
    let unbiased = s.y / f32(p.n * p.hw - 1u);
    run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * s.x;
    run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
}

// Evaluation statistics: mean = running mean, invstd = 1/√(running var + eps), copied so
// that a later training step updating the running tensors cannot change a saved backward.
@compute @workgroup_size(FWG)
fn eval_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    mean[c] = run_mean[c];
    invstd[c] = 1.0 / sqrt(run_var[c] + p.eps);
}

// Linear element index of this invocation, and its channel.
fn elem(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

fn channel(i: u32) -> u32 {
    return (i / p.hw) % p.c;
}

// out = (x − mean)·invstd
@compute @workgroup_size(256)
fn norm_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, nwg, lid);
    if (i >= p.total) { return; }
    let c = channel(i);
    out[i] = (x[i] - mean[c]) * invstd[c];
}

// out = (x − mean)·invstd·γ + β
@compute @workgroup_size(256)
fn norm_fwd_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, nwg, lid);
    if (i >= p.total) { return; }
    let c = channel(i);
    out[i] = (x[i] - mean[c]) * invstd[c] * gamma[c] + beta[c];
}

// Per chunk: (Σ dy, Σ dy·x̂) with x̂ = (x − mean)·invstd.
@compute @workgroup_size(256)
fn grad_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid3: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.c * p.chunks) { return; }
    let lid = lid3.x;
    let c = g / p.chunks;
    let r = chunk_range(g - c * p.chunks);
    let m = mean[c];
    let is = invstd[c];
    var acc = vec2<f32>(0.0, 0.0);
    for (var j = r.x + lid; j < r.y; j += WG) {
        let a = addr(c, j);
        let d = dy[a];
        acc += vec2<f32>(d, d * select((x[a] - m) * is, x[a], XHAT));
    }
    let t = reduce2(lid, acc);
    if (lid == 0u) {
        part[2u * g] = t.x;
        part[2u * g + 1u] = t.y;
    }
}

// dgamma[c] = Σ dy·x̂, dbeta[c] = Σ dy (sums of the channel's chunk partials).
@compute @workgroup_size(FWG)
fn grad_finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    var s = vec2<f32>(0.0, 0.0);
    for (var k = 0u; k < p.chunks; k++) {
        let i = 2u * (c * p.chunks + k);
        s += vec2<f32>(part[i], part[i + 1u]);
    }
    dgamma[c] = s.y;
    dbeta[c] = s.x;
}

// Training-mode dx with per-channel factor `scale` = γ·invstd (or invstd without affine):
// dx = scale·(dy − Σdy/M − x̂·Σ(dy·x̂)/M).
fn dx_train_at(i: u32, c: u32, scale: f32) {
    let inv_m = 1.0 / f32(p.n * p.hw);
    let xh = select((x[i] - mean[c]) * invstd[c], x[i], XHAT);
    out[i] = scale * (dy[i] - dbeta[c] * inv_m - xh * dgamma[c] * inv_m);
}

@compute @workgroup_size(256)
fn dx_train(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, nwg, lid);
    if (i >= p.total) { return; }
    let c = channel(i);
    dx_train_at(i, c, invstd[c]);
}

@compute @workgroup_size(256)
fn dx_train_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, nwg, lid);
    if (i >= p.total) { return; }
    let c = channel(i);
    dx_train_at(i, c, gamma[c] * invstd[c]);
}

// Evaluation mode: the statistics are constants, so dx = invstd·dy (·γ when affine).
@compute @workgroup_size(256)
fn dx_eval(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, nwg, lid);
    if (i >= p.total) { return; }
    out[i] = invstd[channel(i)] * dy[i];
}

@compute @workgroup_size(256)
fn dx_eval_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, nwg, lid);
    if (i >= p.total) { return; }
    let c = channel(i);
    out[i] = gamma[c] * invstd[c] * dy[i];
}
