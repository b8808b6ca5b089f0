// Loss kernels: softmax cross-entropy (forward with the correct-prediction count, backward)
// and mean squared error (forward, backward), reduced to [1] tensors on the GPU.
//
// Reductions to a scalar take two dispatches: per-row or per-workgroup partial results,
// then one workgroup that sums them with a tree in shared memory. The upstream gradient
// of a loss is read from its [1] tensor `g` on the GPU, never assumed to be 1.
//
// Labels are f32 class indices (wgnas tensors are f32 only). A label is rounded to the
// nearest integer and clamped into [0, K−1], so a bad label can never index out of bounds;
// the launcher checks the label count on the CPU.

struct Params {
    n: u32,      // rows (cross-entropy) or elements (MSE) or partial sums (finish)
    k: u32,      // classes (cross-entropy)
    scale: f32,  // 1/N for means; ±2/n for the MSE gradient
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> o1: array<f32>;
@group(0) @binding(6) var<storage, read_write> o2: array<f32>;
@group(0) @binding(7) var<storage, read_write> o3: array<f32>;

const WG: u32 = 256u;
// Elements each invocation of mse_partial sums before the tree (a workgroup covers WG·PER).
const PER: u32 = 16u;

var<workgroup> sh1: array<f32, WG>;
var<workgroup> sh2: array<f32, WG>;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Class index of row `row`: round(y[row]) clamped into [0, k−1].
fn label(row: u32) -> u32 {
    return min(u32(max(round(y[row]), 0.0)), p.k - 1u);
}

// Cross-entropy per row: x = logits [n, k], y = labels [n].
// o1[row] = lse − x[row, label], o2[row] = 1 if argmax == label (ties → lowest index),
// o3[row] = lse = max + log Σ exp(x − max) (kept for the backward pass).
@compute @workgroup_size(256)
fn ce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = linear_id(wid, nwg) * WG + lid.x;
    if (row >= p.n) { return; }
    let base = row * p.k;
    var best = x[base];
    var arg = 0u;
    for (var j = 1u; j < p.k; j++) {
        let v = x[base + j];
        if (v > best) { best = v; arg = j; }
    }
    var s = 0.0;
    for (var j = 0u; j < p.k; j++) {
        s += exp(x[base + j] - best);
    }
    let lse = best + log(s);
    let l = label(row);
    o1[row] = lse - x[base + l];
    o2[row] = select(0.0, 1.0, arg == l);
    o3[row] = lse;
}

// Tree-sums sh1 of one workgroup into sh1[0].
fn tree_sum1(t: u32) {
    for (var w = WG / 2u; w > 0u; w >>= 1u) {
        workgroupBarrier();
        if (t < w) { sh1[t] += sh1[t + w]; }
    }
    workgroupBarrier();
}

// Tree-sums sh1 and sh2 of one workgroup into element 0 of each.
fn tree_sum2(t: u32) {
    for (var w = WG / 2u; w > 0u; w >>= 1u) {
        workgroupBarrier();
        if (t < w) {
            sh1[t] += sh1[t + w];
            sh2[t] += sh2[t + w];
        }
    }
    workgroupBarrier();
}

// One workgroup: o1[0] = scale · Σ x[0..n] (mean loss), o2[0] = Σ y[0..n] (correct count).
@compute @workgroup_size(256)
fn ce_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = lid.x; i < p.n; i += WG) {
        s1 += x[i];
        s2 += y[i];
    }
    sh1[lid.x] = s1;
    sh2[lid.x] = s2;
    tree_sum2(lid.x);
    if (lid.x == 0u) {
        o1[0] = sh1[0] * p.scale;
        o2[0] = sh2[0];
    }
}

// ∂L/∂logits = (softmax − onehot) · scale · g[0], with scale = 1/N; x = logits, y = labels,
// z = lse per row (from ce_rows), o1 = the gradient [n, k].
@compute @workgroup_size(256)
fn ce_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg) * WG + lid.x;
    if (i >= p.n * p.k) { return; }
    let row = i / p.k;
    let col = i - row * p.k;
    let prob = exp(x[i] - z[row]);
    let hot = select(0.0, 1.0, col == label(row));
    o1[i] = (prob - hot) * p.scale * g[0];
}

// MSE pass 1: o1[workgroup] = Σ (x − y)² over the workgroup's WG·PER elements.
@compute @workgroup_size(256)
fn mse_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let group = linear_id(wid, nwg);
    let start = group * WG * PER + lid.x;
    var s = 0.0;
    for (var j = 0u; j < PER; j++) {
        let i = start + j * WG;
        if (i < p.n) {
            let d = x[i] - y[i];
            s += d * d;
        }
    }
    sh1[lid.x] = s;
    tree_sum1(lid.x);
    // A 2-D grid may overshoot the partial count; those workgroups store nothing.
    if (lid.x == 0u && group <= (p.n - 1u) / (WG * PER)) { o1[group] = sh1[0]; }
}

// MSE pass 2, one workgroup: o1[0] = scale · Σ x[0..n] (x = the partial sums, scale = 1/elements).
@compute @workgroup_size(256)
fn sum_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    for (var i = lid.x; i < p.n; i += WG) {
        s += x[i];
    }
    sh1[lid.x] = s;
    tree_sum1(lid.x);
    if (lid.x == 0u) { o1[0] = sh1[0] * p.scale; }
}

// ∂L/∂a (scale = 2/n) or ∂L/∂b (scale = −2/n) of mean((x − y)²): o1 = scale · g[0] · (x − y).
@compute @workgroup_size(256)
fn mse_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_id(wid, nwg) * WG + lid.x;
    if (i >= p.n) { return; }
    o1[i] = p.scale * g[0] * (x[i] - y[i]);
}
