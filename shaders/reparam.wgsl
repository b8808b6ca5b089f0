// Re-parameterization kernels of TopoNAS (DESIGN.md §4, passes 5 and 6):
// kernel normalization (per output filter), the merged conv kernel Σ_m w_m·pad(K̂_m),
// and skip + avg-pool as one depthwise 3×3 with a per-position divisor.
//
// Shared conventions: binding 0 is the parameter block, bindings 1.. the tensors in
// launcher order; the linear workgroup index is wid.x + wid.y * nwg.x; kernels guard
// their bounds. Workgroup reductions are shared-memory trees of 256 lanes.

struct Params {
    n: u32,      // threads (or workgroups, for per-filter kernels) with work
    f: u32,      // knorm: elements per filter; merge: target kernel size k; dwmerge: H
    s: u32,      // merge: candidate kernel size; dwmerge: W
    ia: u32,     // flat index into `wts` of w_m (merge) or of a (dwmerge)
    ib: u32,     // dwmerge: flat index into `wts` of b
    flags: u32,  // knorm: bit 0 gain given; merge: bit 0 accumulate; dwmerge: bit 0 has a, bit 1 has b, bit 2 accumulate into out
    eps: f32,    // knorm: added to ‖K[o]‖² under the square root
    chunk: u32,  // dwmerge weight partials: elements per workgroup; finish: number of partials
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;        // K, candidate kernel or x
@group(0) @binding(2) var<storage, read> b: array<f32>;        // upstream gradient
@group(0) @binding(3) var<storage, read> wts: array<f32>;      // gain (knorm) or the [R, K] weights
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> out2: array<f32>;

const WG: u32 = 256u;
var<workgroup> red0: array<f32, 256>;
var<workgroup> red1: array<f32, 256>;

fn linear_wg(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Tree-reduces red0 and red1 over the workgroup; every lane must call it.
fn reduce2(l: u32) {
    for (var step = WG / 2u; step > 0u; step = step / 2u) {
        workgroupBarrier();
        if (l < step) {
            red0[l] = red0[l] + red0[l + step];
            red1[l] = red1[l] + red1[l + step];
        }
    }
    workgroupBarrier();
}

// ---------------------------------------------------------------- kernel normalization
// One workgroup per output filter o: ss = Σ K², dot = Σ K·dK̂ over the filter's f elements.

fn gain(o: u32) -> f32 {
    return select(1.0, wts[o], (p.flags & 1u) != 0u);
}

// Leaves ss in red0[0] and (when `with_dy`) ⟨K, dK̂⟩ in red1[0].
fn filter_sums(o: u32, l: u32, with_dy: bool) {
    var ss = 0.0;
    var dot = 0.0;
    let base = o * p.f;
    for (var i = l; i < p.f; i = i + WG) {
        let k = a[base + i];
        ss = ss + k * k;
        if (with_dy) { dot = dot + k * b[base + i]; }
    }
    red0[l] = ss;
    red1[l] = dot;
    reduce2(l);
}

// out = g_o · K[o] / sqrt(‖K[o]‖² + eps)
@compute @workgroup_size(256)
fn knorm_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = linear_wg(wid, nwg);
    if (o >= p.n) { return; }
    filter_sums(o, lid.x, false);
    let scale = gain(o) / sqrt(red0[0] + p.eps);
    let base = o * p.f;
    for (var i = lid.x; i < p.f; i = i + WG) {
        out[base + i] = scale * a[base + i];
    }
}

// out = dK = (g/n)(dK̂ − K·⟨K, dK̂⟩/n²),  n = sqrt(‖K‖² + eps)
@compute @workgroup_size(256)
fn knorm_bwd_k(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = linear_wg(wid, nwg);
    if (o >= p.n) { return; }
    filter_sums(o, lid.x, true);
    let n2 = red0[0] + p.eps;
    let scale = gain(o) / sqrt(n2);
    let proj = red1[0] / n2;
    let base = o * p.f;
    for (var i = lid.x; i < p.f; i = i + WG) {
        out[base + i] = scale * (b[base + i] - proj * a[base + i]);
    }
}

// out = dg = ⟨K/n, dK̂⟩
@compute @workgroup_size(256)
fn knorm_bwd_g(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let o = linear_wg(wid, nwg);
    if (o >= p.n) { return; }
    filter_sums(o, lid.x, true);
    if (lid.x == 0u) { out[o] = red1[0] / sqrt(red0[0] + p.eps); }
}

// ---------------------------------------------------------------- merged conv kernel
// Target kernels are k×k (p.f), a candidate is s×s (p.s), centred at offset (k − s)/2.

// Index into the k×k target of element i of an s×s candidate.
fn target_index(i: u32) -> u32 {
    let ss = p.s * p.s;
    let plane = i / ss;
    let r = i % ss;
    let off = (p.f - p.s) / 2u;
    return plane * p.f * p.f + (r / p.s + off) * p.f + (r % p.s + off);
}

// out (+)= w_m · pad(a), one thread per element of the k×k target
@compute @workgroup_size(256)
fn merge_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_wg(wid, nwg) * WG + lid.x;
    if (i >= p.n) { return; }
    let kk = p.f * p.f;
    let plane = i / kk;
    let r = i % kk;
    let off = (p.f - p.s) / 2u;
    let y = r / p.f;
    let x = r % p.f;
    var tap = 0.0;
    if (y >= off && y < off + p.s && x >= off && x < off + p.s) {
        tap = a[plane * p.s * p.s + (y - off) * p.s + (x - off)];
    }
    var acc = 0.0;
    if ((p.flags & 1u) != 0u) { acc = out[i]; }
    out[i] = acc + wts[p.ia] * tap;
}

// out = dK̂_m = w_m · crop(dK), one thread per candidate element
@compute @workgroup_size(256)
fn merge_bwd_kernel(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_wg(wid, nwg) * WG + lid.x;
    if (i >= p.n) { return; }
    out[i] = wts[p.ia] * b[target_index(i)];
}

// out[ia] += ⟨crop(dK), K̂_m⟩: one workgroup strides over the candidate's p.n elements
@compute @workgroup_size(256)
fn merge_bwd_w(@builtin(local_invocation_id) lid: vec3<u32>) {
    var dot = 0.0;
    for (var i = lid.x; i < p.n; i = i + WG) {
        dot = dot + a[i] * b[target_index(i)];
    }
    red0[lid.x] = dot;
    red1[lid.x] = 0.0;
    reduce2(lid.x);
    if (lid.x == 0u) { out[p.ia] = out[p.ia] + red0[0]; }
}

// ---------------------------------------------------------------- skip + avg pool (depthwise 3×3)
// y = a·x + b·(Σ of the in-image 3×3 neighbours)/count, stride 1, padding 1.

fn a_weight() -> f32 {
    return select(0.0, wts[p.ia], (p.flags & 1u) != 0u);
}

fn b_weight() -> f32 {
    return select(0.0, wts[p.ib], (p.flags & 2u) != 0u);
}

// In-image taps of a 3-wide window centred at v on an axis of length len.
fn taps(v: u32, len: u32) -> u32 {
    return min(v + 1u, len - 1u) - select(0u, v - 1u, v > 0u) + 1u;
}

// avgpool3x3(a)[i] with count_include_pad = false
fn pool_at(i: u32) -> f32 {
    let hw = p.f * p.s;
    let base = (i / hw) * hw;
    let y = (i % hw) / p.s;
    let x = i % p.s;
    let y0 = select(0u, y - 1u, y > 0u);
    let x0 = select(0u, x - 1u, x > 0u);
    let y1 = min(y + 1u, p.f - 1u);
    let x1 = min(x + 1u, p.s - 1u);
    var sum = 0.0;
    for (var yy = y0; yy <= y1; yy = yy + 1u) {
        for (var xx = x0; xx <= x1; xx = xx + 1u) {
            sum = sum + a[base + yy * p.s + xx];
        }
    }
    return sum / f32((y1 - y0 + 1u) * (x1 - x0 + 1u));
}

// out (+)= a·x + b·avgpool(x)
@compute @workgroup_size(256)
fn dwmerge_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_wg(wid, nwg) * WG + lid.x;
    if (i >= p.n) { return; }
    var prev = 0.0;
    if ((p.flags & 4u) != 0u) { prev = out[i]; }
    out[i] = prev + a_weight() * a[i] + b_weight() * pool_at(i);
}

// out = dx = a·dy + b·Σ_{q ∈ window(i)} dy[q] / count(q)   (the window is symmetric)
@compute @workgroup_size(256)
fn dwmerge_bwd_x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_wg(wid, nwg) * WG + lid.x;
    if (i >= p.n) { return; }
    let hw = p.f * p.s;
    let base = (i / hw) * hw;
    let y = (i % hw) / p.s;
    let x = i % p.s;
    let y0 = select(0u, y - 1u, y > 0u);
    let x0 = select(0u, x - 1u, x > 0u);
    let y1 = min(y + 1u, p.f - 1u);
    let x1 = min(x + 1u, p.s - 1u);
    var sum = 0.0;
    for (var yy = y0; yy <= y1; yy = yy + 1u) {
        let ty = taps(yy, p.f);
        for (var xx = x0; xx <= x1; xx = xx + 1u) {
            sum = sum + b[base + yy * p.s + xx] / f32(ty * taps(xx, p.s));
        }
    }
    out[i] = a_weight() * b[i] + b_weight() * sum;
}

// out[2·wg] = Σ x·dy, out[2·wg + 1] = Σ avgpool(x)·dy over the workgroup's p.chunk elements
@compute @workgroup_size(256)
fn dwmerge_bwd_w_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = linear_wg(wid, nwg);
    let start = g * p.chunk;
    let end = min(start + p.chunk, p.n);
    var da = 0.0;
    var db = 0.0;
    for (var i = start + lid.x; i < end; i = i + WG) {
        let d = b[i];
        da = da + a[i] * d;
        db = db + pool_at(i) * d;
    }
    red0[lid.x] = da;
    red1[lid.x] = db;
    reduce2(lid.x);
    if (lid.x == 0u) {
        out[2u * g] = red0[0];
        out[2u * g + 1u] = red1[0];
    }
}

// out2[ia] += Σ partial da, out2[ib] += Σ partial db (one workgroup over p.chunk partial pairs)
@compute @workgroup_size(256)
fn dwmerge_bwd_w_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    var da = 0.0;
    var db = 0.0;
    for (var j = lid.x; j < p.chunk; j = j + WG) {
        da = da + out[2u * j];
        db = db + out[2u * j + 1u];
    }
    red0[lid.x] = da;
    red1[lid.x] = db;
    reduce2(lid.x);
    if (lid.x == 0u) {
        if ((p.flags & 1u) != 0u) { out2[p.ia] = out2[p.ia] + red0[0]; }
        if ((p.flags & 2u) != 0u) { out2[p.ib] = out2[p.ib] + red1[0]; }
    }
}
