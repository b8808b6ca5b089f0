// Mixed-op kernels of differentiable NAS: y = Σ_k w_k x_k over the K candidates of one
// edge (row `row` of α, w = softmax(α[row, :]) or the raw weights), its backward to the
// inputs (dx_k = w_k dy) and to α (g_k = <dy, x_k>, two passes), and the row softmax.
//
// Candidates are bound 8 at a time (x0..x7 = candidates k0..k0+kg); K > 8 takes
// ⌈K / 8⌉ passes. The softmax is recomputed by every invocation from the α row: K is
// small and this saves a dispatch and a buffer.
// Bindings follow the wgnas convention (0 = params, then tensors in launcher order).

struct Params {
    n: u32,      // elements per candidate tensor
    k: u32,      // columns of α (K)
    row: u32,    // the edge r
    rows: u32,   // rows of α (R)
    k0: u32,     // first candidate bound to x0 / d0
    kg: u32,     // candidates bound (1..8)
    flags: u32,  // bit 0: softmax of α (else raw weights); bit 1: accumulate into y; bits 8..15: dx to write
    chunk: u32,  // elements per workgroup of mix_alpha_partial
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> alpha: array<f32>;
@group(0) @binding(2) var<storage, read> x0: array<f32>;
@group(0) @binding(3) var<storage, read> x1: array<f32>;
@group(0) @binding(4) var<storage, read> x2: array<f32>;
@group(0) @binding(5) var<storage, read> x3: array<f32>;
@group(0) @binding(6) var<storage, read> x4: array<f32>;
@group(0) @binding(7) var<storage, read> x5: array<f32>;
@group(0) @binding(8) var<storage, read> x6: array<f32>;
@group(0) @binding(9) var<storage, read> x7: array<f32>;
@group(0) @binding(10) var<storage, read> dy: array<f32>;
@group(0) @binding(11) var<storage, read_write> y: array<f32>;
@group(0) @binding(12) var<storage, read_write> d0: array<f32>;
@group(0) @binding(13) var<storage, read_write> d1: array<f32>;
@group(0) @binding(14) var<storage, read_write> d2: array<f32>;
@group(0) @binding(15) var<storage, read_write> d3: array<f32>;
@group(0) @binding(16) var<storage, read_write> d4: array<f32>;
@group(0) @binding(17) var<storage, read_write> d5: array<f32>;
@group(0) @binding(18) var<storage, read_write> d6: array<f32>;
@group(0) @binding(19) var<storage, read_write> d7: array<f32>;
@group(0) @binding(20) var<storage, read_write> partials: array<f32>;
@group(0) @binding(21) var<storage, read_write> dalpha: array<f32>;

const WG: u32 = 256u;
const GROUP: u32 = 8u;      // candidates bound per pass
const PER: u32 = 4u;        // elements per invocation in mix_fwd / mix_bwd_x
const MAX_K: u32 = 64u;     // columns of α the α-gradient finish can hold
const SOFTMAX: u32 = 1u;
const ACCUMULATE: u32 = 2u;

var<workgroup> red: array<f32, 2048>;  // GROUP × WG partial dot products
var<workgroup> gk: array<f32, 64>;     // MAX_K reduced dot products

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// max_j α[row, j] and Σ_j exp(α[row, j] − max): the softmax of the row is exp(α − m) / s.
fn softmax_stats(row: u32) -> vec2<f32> {
    let base = row * p.k;
    var m = alpha[base];
    for (var j = 1u; j < p.k; j++) { m = max(m, alpha[base + j]); }
    var s = 0.0;
    for (var j = 0u; j < p.k; j++) { s += exp(alpha[base + j] - m); }
    return vec2<f32>(m, s);
}

// Weight of candidate k on the edge: softmax(α[row])_k, or α[row, k] itself.
fn weight(k: u32, stats: vec2<f32>) -> f32 {
    let a = alpha[p.row * p.k + k];
    if ((p.flags & SOFTMAX) != 0u) { return exp(a - stats.x) / stats.y; }
    return a;
}

fn edge_stats() -> vec2<f32> {
    if ((p.flags & SOFTMAX) != 0u) { return softmax_stats(p.row); }
    return vec2<f32>(0.0, 1.0);
}

// Weights of the bound candidates k0..k0+kg (0 past kg).
fn group_weights() -> array<f32, 8> {
    let stats = edge_stats();
    var w: array<f32, 8>;
    for (var j = 0u; j < GROUP; j++) {
        w[j] = 0.0;
        if (j < p.kg) { w[j] = weight(p.k0 + j, stats); }
    }
    return w;
}

fn load_x(j: u32, i: u32) -> f32 {
    switch j {
        case 0u: { return x0[i]; }
        case 1u: { return x1[i]; }
        case 2u: { return x2[i]; }
        case 3u: { return x3[i]; }
        case 4u: { return x4[i]; }
        case 5u: { return x5[i]; }
        case 6u: { return x6[i]; }
        default: { return x7[i]; }
    }
}

fn store_d(j: u32, i: u32, v: f32) {
    switch j {
        case 0u: { d0[i] = v; }
        case 1u: { d1[i] = v; }
        case 2u: { d2[i] = v; }
        case 3u: { d3[i] = v; }
        case 4u: { d4[i] = v; }
        case 5u: { d5[i] = v; }
        case 6u: { d6[i] = v; }
        default: { d7[i] = v; }
    }
}

// y[i] (+)= Σ_{j < kg} w_{k0+j} x_j[i]; each invocation does PER elements, WG apart
@compute @workgroup_size(256)
fn mix_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let first = (wid.x + wid.y * nwg.x) * WG * PER + lid.x;
    if (first >= p.n) { return; }
    let w = group_weights();
    for (var e = 0u; e < PER; e++) {
        let i = first + e * WG;
        if (i >= p.n) { break; }
        var acc = 0.0;
        if ((p.flags & ACCUMULATE) != 0u) { acc = y[i]; }
        for (var j = 0u; j < GROUP; j++) {
            if (j < p.kg) { acc += w[j] * load_x(j, i); }
        }
        y[i] = acc;
    }
}

// d_j[i] = w_{k0+j} dy[i] for every j whose bit 8 + j is set in flags
@compute @workgroup_size(256)
fn mix_bwd_x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let first = (wid.x + wid.y * nwg.x) * WG * PER + lid.x;
    if (first >= p.n) { return; }
    let w = group_weights();
    for (var e = 0u; e < PER; e++) {
        let i = first + e * WG;
        if (i >= p.n) { break; }
        let g = dy[i];
        for (var j = 0u; j < GROUP; j++) {
            if (j < p.kg && (p.flags & (256u << j)) != 0u) { store_d(j, i, w[j] * g); }
        }
    }
}

// partials[w * K + k0 + j] = Σ over this workgroup's chunk of dy · x_j   (j < kg)
@compute @workgroup_size(256)
fn mix_alpha_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    let groups = (p.n + p.chunk - 1u) / p.chunk;
    if (w >= groups) { return; }  // grid overshoot: uniform per workgroup
    let begin = w * p.chunk;
    let end = min(begin + p.chunk, p.n);
    var acc: array<f32, 8>;
    for (var j = 0u; j < GROUP; j++) { acc[j] = 0.0; }
    for (var i = begin + lid.x; i < end; i += WG) {
        let g = dy[i];
        for (var j = 0u; j < GROUP; j++) {
            if (j < p.kg) { acc[j] += g * load_x(j, i); }
        }
    }
    for (var j = 0u; j < GROUP; j++) { red[j * WG + lid.x] = acc[j]; }
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            for (var j = 0u; j < GROUP; j++) {
                red[j * WG + lid.x] += red[j * WG + lid.x + stride];
            }
        }
        workgroupBarrier();
    }
    if (lid.x < p.kg) { partials[w * p.k + p.k0 + lid.x] = red[lid.x * WG]; }
}

// One workgroup: g_k = Σ_w partials[w * K + k]; then the whole [R, K] gradient:
// dα[row, k] = w_k (g_k − Σ_j w_j g_j) (softmax) or g_k (raw weights), 0 in other rows.
// `chunk` carries the number of partial rows here.
@compute @workgroup_size(256)
fn mix_alpha_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    for (var k = 0u; k < p.k; k++) {
        var acc = 0.0;
        for (var w = lid.x; w < p.chunk; w += WG) { acc += partials[w * p.k + k]; }
        red[lid.x] = acc;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if (lid.x < stride) { red[lid.x] += red[lid.x + stride]; }
            workgroupBarrier();
        }
        if (lid.x == 0u) { gk[k] = red[0]; }
        workgroupBarrier();
    }
    let stats = edge_stats();
    let softmax = (p.flags & SOFTMAX) != 0u;
    var mean = 0.0;  // Σ_j w_j g_j
    if (softmax) {
        for (var j = 0u; j < p.k; j++) { mean += weight(j, stats) * gk[j]; }
    }
    for (var e = lid.x; e < p.rows * p.k; e += WG) {
        let r = e / p.k;
        let k = e % p.k;
        var v = 0.0;
        if (r == p.row) {
            v = gk[k];
            if (softmax) { v = weight(k, stats) * (gk[k] - mean); }
        }
        dalpha[e] = v;
    }
}

// y[r, :] = softmax(α[r, :]), one invocation per row
@compute @workgroup_size(256)
fn softmax_rows_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = index(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let stats = softmax_stats(r);
    for (var j = 0u; j < p.k; j++) {
        y[r * p.k + j] = exp(alpha[r * p.k + j] - stats.x) / stats.y;
    }
}

// dα[r, j] = s_j (dy_j − Σ_i s_i dy_i) with s = softmax output (bound as alpha)
@compute @workgroup_size(256)
fn softmax_rows_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = index(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let base = r * p.k;
    var sd = 0.0;  // Σ_i s_i dy_i
    for (var j = 0u; j < p.k; j++) { sd += alpha[base + j] * dy[base + j]; }
    for (var j = 0u; j < p.k; j++) {
        dalpha[base + j] = alpha[base + j] * (dy[base + j] - sd);
    }
}
