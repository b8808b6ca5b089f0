// Elementwise kernels: ReLU forward/backward, add, scale, axpy, fill.
//
// Conventions shared by every wgnas shader:
// - binding 0 is the launch's parameter block (a uniform from the per-submission arena);
//   bindings 1.. are the tensors in the order the launcher passes them;
// - the grid may be 2-D when a 1-D one would exceed the per-dimension limit, so the
//   linear workgroup index is wid.x + wid.y * nwg.x, and every kernel guards i < n.

struct Params {
    n: u32,
    alpha: f32,   // scale / axpy factor / fill value
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// out = max(a, 0)
@compute @workgroup_size(256)
fn relu_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = max(a[i], 0.0); }
}

// out = b if a > 0 else 0   (a = ReLU input or output, b = upstream gradient)
@compute @workgroup_size(256)
fn relu_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = select(0.0, b[i], a[i] > 0.0); }
}

// out = a + b
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = a[i] + b[i]; }
}

// out = alpha * a
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = p.alpha * a[i]; }
}

// out += alpha * a   (in place)
@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = out[i] + p.alpha * a[i]; }
}

// out = alpha
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i < p.n) { out[i] = p.alpha; }
}
