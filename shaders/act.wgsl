// Activations of the MBConv space: sigmoid and swish (forward, backward), and the
// per-channel scale of squeeze-and-excitation (forward, both backward rules).
//
// Conventions as in eltwise.wgsl: binding 0 is the parameter block, bindings 1.. the tensors
// in launcher order; 1-D kernels linearise a possibly 2-D grid as wid.x + wid.y * nwg.x and
// guard i < n. The plane reduction runs one workgroup per (n, c) plane.

struct Params {
    n: u32,       // elements (elementwise kernels) or planes N·C (plane reduction)
    plane: u32,   // H·W, elements of one (n, c) plane
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
// Plane reduction width: small, because workgroup barriers are expensive on software drivers.
const RWG: u32 = 64u;

var<workgroup> partial: array<f32, RWG>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// 1/(1+e^{-x}) without overflow: e^{-|x|} ≤ 1 is the only exponential taken.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, x >= 0.0);
}

// out = sigmoid(a)
@compute @workgroup_size(256)
fn sigmoid_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = sigmoid(a[i]); }
}

// out = b · y(1 − y), with a = y the sigmoid's output
@compute @workgroup_size(256)
fn sigmoid_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) {
        let y = a[i];
        out[i] = b[i] * y * (1.0 - y);
    }
}

// out = a · sigmoid(a)
@compute @workgroup_size(256)
fn swish_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) {
        let x = a[i];
        out[i] = x * sigmoid(x);
    }
}

// out = b · (s + x·s·(1 − s)), s = sigmoid(x), a = x the swish's input
@compute @workgroup_size(256)
fn swish_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) {
        let x = a[i];
        let s = sigmoid(x);
        out[i] = b[i] * (s + x * s * (1.0 - s));
    }
}

// out[i] = a[i] · b[i / plane]: x scaled per (n, c) plane (forward), or dy scaled (dx)
@compute @workgroup_size(256)
fn channel_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = a[i] * b[i / p.plane]; }
}

// out[q] = Σ_{j < plane} a[q·plane + j] · b[q·plane + j]: ds = Σ_hw x·dy per plane q
@compute @workgroup_size(64)
fn plane_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let q = wid.x + wid.y * nwg.x;
    // q is uniform across the workgroup, so every invocation reaches the barriers or none does.
    if (q >= p.n) { return; }
    let base = q * p.plane;
    var acc = 0.0;
    for (var j = lid.x; j < p.plane; j += RWG) {
        acc += a[base + j] * b[base + j];
    }
    partial[lid.x] = acc;
    workgroupBarrier();
    for (var stride = RWG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) { partial[lid.x] += partial[lid.x + stride]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { out[q] = partial[0]; }
}
