// Reduction kernels: sum, sum of squares and dot product to one scalar, in two passes
// (per-workgroup partial sums, then one workgroup that adds the partials), and the
// in-place gradient scaling of clip_grad_norm. For DNA's path rating: Σ|x − y|, the
// centred sum of squares Σ(x − y[0])² (standard deviation), and a finish that scales,
// takes the square root, or accumulates into its output slot.
//
// One partial pass covers up to 6 tensors ("slots" x0..x5) so that the norm of a whole
// parameter list costs few dispatches. Workgroup w of the grid belongs to slot s when
// start[s] <= w < start[s + 1]; it reduces elements [(w - start[s]) * chunk, +chunk) of
// that slot and writes its partial to partials[offset + w].
// Bindings follow the wgnas convention (0 = params, then tensors in launcher order); the
// gradients that clip_scale rewrites get their own read_write bindings because the inputs
// of the sums are read-only (dot(a, a) binds one buffer twice).

struct Params {
    mode: u32,      // partials: 0 sum, 1 sum of squares; finish: 0 plain, 1 sqrt
    chunk: u32,     // elements per workgroup
    offset: u32,    // partials: first partial slot written; finish: index in out; clip: index of the norm
    count: u32,     // partials/clip: slots bound; finish: partials to add
    max_norm: f32,  // clip_scale only
    scale: f32,     // partial_pair / finish_scaled only
    _p1: u32,
    _p2: u32,
    len: array<vec4<u32>, 2>,    // element count of each slot
    start: array<vec4<u32>, 2>,  // first workgroup of each slot; start[count] = total
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read> x3: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<f32>;
@group(0) @binding(6) var<storage, read> x5: array<f32>;
@group(0) @binding(7) var<storage, read> y: array<f32>;
@group(0) @binding(8) var<storage, read_write> partials: array<f32>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;
@group(0) @binding(10) var<storage, read_write> g0: array<f32>;
@group(0) @binding(11) var<storage, read_write> g1: array<f32>;
@group(0) @binding(12) var<storage, read_write> g2: array<f32>;
@group(0) @binding(13) var<storage, read_write> g3: array<f32>;
@group(0) @binding(14) var<storage, read_write> g4: array<f32>;
@group(0) @binding(15) var<storage, read_write> g5: array<f32>;

const WG: u32 = 256u;
const MODE_SQUARES: u32 = 1u;
const MODE_SQRT: u32 = 1u;

var<workgroup> red: array<f32, 256>;

fn slot_len(s: u32) -> u32 { return p.len[s / 4u][s % 4u]; }
fn slot_start(s: u32) -> u32 { return p.start[s / 4u][s % 4u]; }

// The slot that workgroup w belongs to (the grid is partitioned by start[]).
fn slot_of(w: u32) -> u32 {
    var s = 0u;
    for (var j = 1u; j < p.count; j++) {
        if (w >= slot_start(j)) { s = j; }
    }
    return s;
}

fn load(s: u32, i: u32) -> f32 {
    switch s {
        case 0u: { return x0[i]; }
        case 1u: { return x1[i]; }
        case 2u: { return x2[i]; }
        case 3u: { return x3[i]; }
        case 4u: { return x4[i]; }
        default: { return x5[i]; }
    }
}

// Tree reduction of red[0..256) into red[0]; every invocation must call it.
fn tree(lid: u32) {
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) { red[lid] = red[lid] + red[lid + stride]; }
        workgroupBarrier();
    }
}

// partials[offset + w] = Σ over this workgroup's chunk of x or x².
@compute @workgroup_size(256)
fn partial_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= slot_start(p.count)) { return; }  // grid overshoot: uniform per workgroup
    let s = slot_of(w);
    let begin = (w - slot_start(s)) * p.chunk;
    let end = min(begin + p.chunk, slot_len(s));
    var acc = 0.0;
    for (var i = begin + lid.x; i < end; i += WG) {
        let v = load(s, i);
        acc += select(v, v * v, p.mode == MODE_SQUARES);
    }
    red[lid.x] = acc;
    tree(lid.x);
    if (lid.x == 0u) { partials[p.offset + w] = red[0]; }
}

// partials[offset + w] = Σ over this workgroup's chunk of x0 · y (one slot only).
@compute @workgroup_size(256)
fn partial_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= slot_start(1u)) { return; }
    let begin = w * p.chunk;
    let end = min(begin + p.chunk, slot_len(0u));
    var acc = 0.0;
    for (var i = begin + lid.x; i < end; i += WG) {
        acc += x0[i] * y[i];
    }
    red[lid.x] = acc;
    tree(lid.x);
    if (lid.x == 0u) { partials[p.offset + w] = red[0]; }
}

// out[offset] = Σ partials[0..count), or its square root. One workgroup.
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = 0.0;
    for (var i = lid.x; i < p.count; i += WG) {
        acc += partials[i];
    }
    red[lid.x] = acc;
    tree(lid.x);
    if (lid.x == 0u) {
        let total = red[0];
        out[p.offset] = select(total, sqrt(total), p.mode == MODE_SQRT);
    }
}

fn scale_slot(s: u32, i: u32, c: f32) {
    switch s {
        case 0u: { g0[i] = g0[i] * c; }
        case 1u: { g1[i] = g1[i] * c; }
        case 2u: { g2[i] = g2[i] * c; }
        case 3u: { g3[i] = g3[i] * c; }
        case 4u: { g4[i] = g4[i] * c; }
        default: { g5[i] = g5[i] * c; }
    }
}

// g *= min(1, max_norm / (norm + 1e-6)) with norm = out[offset]  (torch clip_grad_norm_).
@compute @workgroup_size(256)
fn clip_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= slot_start(p.count)) { return; }
    let s = slot_of(w);
    let begin = (w - slot_start(s)) * p.chunk;
    let end = min(begin + p.chunk, slot_len(s));
    let c = min(1.0, p.max_norm / (out[p.offset] + 1e-6));
    for (var i = begin + lid.x; i < end; i += WG) {
        scale_slot(s, i, c);
    }
}

const PAIR_ABS_DIFF: u32 = 0u;
const FINISH_SCALED: u32 = 0u;
const FINISH_SQRT_SCALED: u32 = 1u;
const FINISH_ACCUMULATE: u32 = 2u;

// partials[offset + w] = Σ over this workgroup's chunk of |x0 − y| (mode 0) or of
// (x0 − y[0])² (mode 1: y holds the mean). One slot.
@compute @workgroup_size(256)
fn partial_pair(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= slot_start(1u)) { return; }
    let begin = w * p.chunk;
    let end = min(begin + p.chunk, slot_len(0u));
    var acc = 0.0;
    if (p.mode == PAIR_ABS_DIFF) {
        for (var i = begin + lid.x; i < end; i += WG) {
            acc += abs(x0[i] - y[i]);
        }
    } else {
        let c = y[0];
        for (var i = begin + lid.x; i < end; i += WG) {
            let d = x0[i] - c;
            acc += d * d;
        }
    }
    red[lid.x] = acc;
    tree(lid.x);
    if (lid.x == 0u) { partials[p.offset + w] = red[0]; }
}

// With t = Σ partials[0..count): out[offset] = t·scale (mode 0), sqrt(t·scale) (mode 1),
// or out[offset] += t·scale (mode 2). One workgroup.
@compute @workgroup_size(256)
fn finish_scaled(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = 0.0;
    for (var i = lid.x; i < p.count; i += WG) {
        acc += partials[i];
    }
    red[lid.x] = acc;
    tree(lid.x);
    if (lid.x == 0u) {
        let v = red[0] * p.scale;
        if (p.mode == FINISH_SCALED) {
            out[p.offset] = v;
        } else if (p.mode == FINISH_SQRT_SCALED) {
            out[p.offset] = sqrt(v);
        } else {
            out[p.offset] = out[p.offset] + v;
        }
    }
}
