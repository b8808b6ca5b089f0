// Term-mix kernels of the TopoNAS exact passes: out[N, C, H, W] (+)= Σ_t w(col_t) · slice_t(x_t),
// where slice_t is the channel range [off_t, off_t + C) of x_t [N, Cx_t, H, W] (a whole tensor
// is offset 0 with Cx = C) and w = softmax(α[row, :]) or the raw weights row. Also: its
// backward to the inputs (slice_t(d_t) (+)= w(col_t) dy, written in place into wide gradient
// buffers), to the weights (two passes, no atomics), and the nested (partial-sharing) weights.
//
// NCHW channel slices are not contiguous: out element i = (n, r) with n = i / (C·HW),
// r = i % (C·HW) reads x_t[n · Cx_t·HW + off_t·HW + r]. Up to 8 terms are bound per dispatch
// (x0..x7 or d0..d7); their (Cx·HW, off·HW, col) sit in the uniform `terms` array.
// The softmax is recomputed from the α row by every invocation, as in mix.wgsl.
// Bindings follow the wgnas convention (0 = params, then tensors in launcher order).

struct Params {
    n: u32,        // elements of out / dy (N·C·HW)
    chw: u32,      // C·HW: elements of one batch item of out
    k: u32,        // columns of the weights (K)
    row: u32,      // the edge r
    rows: u32,     // rows of the weights (R)
    nt: u32,       // terms bound (1..8)
    flags: u32,    // bit 0 softmax; bit 1 accumulate into y; bits 8..15 write d_t; bits 16..23 accumulate d_t
    chunk: u32,    // alpha partial: elements per workgroup; finish: number of partial rows
    mask_lo: u32,  // nested: group columns 0..31 (bit j = column j)
    mask_hi: u32,  // nested: group columns 32..63
    pad0: u32,
    pad1: u32,
    terms: array<vec4<u32>, 8>,  // per term: (Cx·HW, off·HW, col, 0)
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
const TERMS: u32 = 8u;      // terms bound per dispatch
const PER: u32 = 4u;        // elements per invocation in terms_fwd / terms_bwd_x
const SOFTMAX: u32 = 1u;
const ACCUMULATE: u32 = 2u;

var<workgroup> red: array<f32, 2048>;  // TERMS × WG partial dot products
var<workgroup> gk: array<f32, 64>;     // per-column dot products (K ≤ 64)
var<workgroup> gt: array<f32, 8>;      // per-term dot products

// max_j α[row, j] and Σ_j exp(α[row, j] − max): the softmax of the row is exp(α − m) / s.
fn softmax_stats(row: u32) -> vec2<f32> {
    let base = row * p.k;
    var m = alpha[base];
    for (var j = 1u; j < p.k; j++) { m = max(m, alpha[base + j]); }
    var s = 0.0;
    for (var j = 0u; j < p.k; j++) { s += exp(alpha[base + j] - m); }
    return vec2<f32>(m, s);
}

fn edge_stats() -> vec2<f32> {
    if ((p.flags & SOFTMAX) != 0u) { return softmax_stats(p.row); }
    return vec2<f32>(0.0, 1.0);
}

// Weight of column k on the edge: softmax(α[row])_k, or α[row, k] itself.
fn weight(k: u32, stats: vec2<f32>) -> f32 {
    let a = alpha[p.row * p.k + k];
    if ((p.flags & SOFTMAX) != 0u) { return exp(a - stats.x) / stats.y; }
    return a;
}

// Weights of the bound terms (0 past nt).
fn term_weights() -> array<f32, 8> {
    let stats = edge_stats();
    var w: array<f32, 8>;
    for (var t = 0u; t < TERMS; t++) {
        w[t] = 0.0;
        if (t < p.nt) { w[t] = weight(p.terms[t].z, stats); }
    }
    return w;
}

// Index into x_t of the out element (batch item b, offset r within the item).
fn src(t: u32, b: u32, r: u32) -> u32 {
    let term = p.terms[t];
    return b * term.x + term.y + r;
}

fn load_x(t: u32, i: u32) -> f32 {
    switch t {
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

fn load_d(t: u32, i: u32) -> f32 {
    switch t {
        case 0u: { return d0[i]; }
        case 1u: { return d1[i]; }
        case 2u: { return d2[i]; }
        case 3u: { return d3[i]; }
        case 4u: { return d4[i]; }
        case 5u: { return d5[i]; }
        case 6u: { return d6[i]; }
        default: { return d7[i]; }
    }
}

fn store_d(t: u32, i: u32, v: f32) {
    switch t {
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

// y[i] (+)= Σ_{t < nt} w_t x_t[src_t(i)]; each invocation does PER elements, WG apart
@compute @workgroup_size(256)
fn terms_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let first = (wid.x + wid.y * nwg.x) * WG * PER + lid.x;
    if (first >= p.n) { return; }
    let w = term_weights();
    for (var e = 0u; e < PER; e++) {
        let i = first + e * WG;
        if (i >= p.n) { break; }
        let b = i / p.chw;
        let r = i - b * p.chw;
        var acc = 0.0;
        if ((p.flags & ACCUMULATE) != 0u) { acc = y[i]; }
        for (var t = 0u; t < TERMS; t++) {
            if (t < p.nt) { acc += w[t] * load_x(t, src(t, b, r)); }
        }
        y[i] = acc;
    }
}

// d_t[src_t(i)] (+)= w_t dy[i] for every t whose bit 8 + t is set (bit 16 + t: accumulate).
// Terms of one dispatch never write overlapping elements (the launcher splits them).
@compute @workgroup_size(256)
fn terms_bwd_x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let first = (wid.x + wid.y * nwg.x) * WG * PER + lid.x;
    if (first >= p.n) { return; }
    let w = term_weights();
    for (var e = 0u; e < PER; e++) {
        let i = first + e * WG;
        if (i >= p.n) { break; }
        let b = i / p.chw;
        let r = i - b * p.chw;
        let g = dy[i];
        for (var t = 0u; t < TERMS; t++) {
            if (t < p.nt && (p.flags & (256u << t)) != 0u) {
                let s = src(t, b, r);
                var v = w[t] * g;
                if ((p.flags & (65536u << t)) != 0u) { v += load_d(t, s); }
                store_d(t, s, v);
            }
        }
    }
}

// partials[w * 8 + t] = Σ over this workgroup's chunk of out elements of dy · slice_t(x_t)
@compute @workgroup_size(256)
fn terms_alpha_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    let groups = (p.n + p.chunk - 1u) / p.chunk;
    if (w >= groups) { return; }  // grid overshoot: uniform per workgroup
    let begin = w * p.chunk;
    let end = min(begin + p.chunk, p.n);
    var acc: array<f32, 8>;
    for (var t = 0u; t < TERMS; t++) { acc[t] = 0.0; }
    for (var i = begin + lid.x; i < end; i += WG) {
        let b = i / p.chw;
        let r = i - b * p.chw;
        let g = dy[i];
        for (var t = 0u; t < TERMS; t++) {
            if (t < p.nt) { acc[t] += g * load_x(t, src(t, b, r)); }
        }
    }
    for (var t = 0u; t < TERMS; t++) { red[t * WG + lid.x] = acc[t]; }
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            for (var t = 0u; t < TERMS; t++) {
                red[t * WG + lid.x] += red[t * WG + lid.x + stride];
            }
        }
        workgroupBarrier();
    }
    if (lid.x < TERMS) { partials[w * TERMS + lid.x] = red[lid.x * WG]; }
}

// One workgroup: g_t = Σ_w partials[w * 8 + t]; g_k = Σ_{t: col_t = k} g_t; then the whole
// [R, K] gradient: dα[row, k] = w_k (g_k − Σ_j w_j g_j) (softmax) or g_k (raw), 0 in other rows.
// `chunk` carries the number of partial rows here.
@compute @workgroup_size(256)
fn terms_alpha_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    for (var t = 0u; t < p.nt; t++) {
        var acc = 0.0;
        for (var w = lid.x; w < p.chunk; w += WG) { acc += partials[w * TERMS + t]; }
        red[lid.x] = acc;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if (lid.x < stride) { red[lid.x] += red[lid.x + stride]; }
            workgroupBarrier();
        }
        if (lid.x == 0u) { gt[t] = red[0]; }
        workgroupBarrier();
    }
    if (lid.x < p.k) {
        var g = 0.0;
        for (var t = 0u; t < p.nt; t++) {
            if (p.terms[t].z == lid.x) { g += gt[t]; }
        }
        gk[lid.x] = g;
    }
    workgroupBarrier();
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

fn in_group(j: u32) -> bool {
    if (j < 32u) { return ((p.mask_lo >> j) & 1u) != 0u; }
    return ((p.mask_hi >> (j - 32u)) & 1u) != 0u;
}

// softmax(α[r])_j from the row statistics.
fn soft(r: u32, j: u32, stats: vec2<f32>) -> f32 {
    return exp(alpha[r * p.k + j] - stats.x) / stats.y;
}

// W = Σ_{m ∈ S} softmax(α[r])_m
fn group_mass(r: u32, stats: vec2<f32>) -> f32 {
    var mass = 0.0;
    for (var j = 0u; j < p.k; j++) {
        if (in_group(j)) { mass += soft(r, j, stats); }
    }
    return mass;
}

// y[r, k] = w_k (k ∉ S) or w_k / W (k ∈ S); y[r, K] = W. One invocation per row; y is [R, K+1].
@compute @workgroup_size(256)
fn nested_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = (wid.x + wid.y * nwg.x) * WG + lid.x;
    if (r >= p.rows) { return; }
    let stats = softmax_stats(r);
    let mass = group_mass(r, stats);
    let base = r * (p.k + 1u);
    for (var j = 0u; j < p.k; j++) {
        var v = soft(r, j, stats);
        if (in_group(j)) { v = v / mass; }
        y[base + j] = v;
    }
    y[base + p.k] = mass;
}

// dα[r] from d = ∂L/∂y (bound as dy, [R, K+1]): dw_k = d_k (k ∉ S),
// dw_k = d_k / W − Σ_{m∈S} d_m w_m / W² + d_K (k ∈ S); dα = w ⊙ (dw − Σ_j w_j dw_j).
@compute @workgroup_size(256)
fn nested_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = (wid.x + wid.y * nwg.x) * WG + lid.x;
    if (r >= p.rows) { return; }
    let stats = softmax_stats(r);
    let mass = group_mass(r, stats);
    let base = r * (p.k + 1u);
    var sd = 0.0;  // Σ_{m∈S} d_m w_m
    for (var j = 0u; j < p.k; j++) {
        if (in_group(j)) { sd += dy[base + j] * soft(r, j, stats); }
    }
    let shift = dy[base + p.k] - sd / (mass * mass);
    var mean = 0.0;  // Σ_j w_j dw_j
    for (var j = 0u; j < p.k; j++) {
        var dw = dy[base + j];
        if (in_group(j)) { dw = dw / mass + shift; }
        mean += soft(r, j, stats) * dw;
    }
    for (var j = 0u; j < p.k; j++) {
        var dw = dy[base + j];
        if (in_group(j)) { dw = dw / mass + shift; }
        dalpha[r * p.k + j] = soft(r, j, stats) * (dw - mean);
    }
}
