// Pooling kernels on NCHW tensors: 2-D window pooling (average and max) forward and
// backward, and global average pooling forward and backward.
//
// Conventions (as in every wgnas shader): binding 0 is the parameter block; bindings 1..
// are the tensors in launcher order (x, dy, idx, out; an entry point binds only those it
// uses); the grid may be 2-D, so the linear workgroup index is wid.x + wid.y * nwg.x and
// every kernel guards i < n.
//
// Backward kernels GATHER: each input pixel sums over the windows that contain it, so
// every element is written by exactly one thread and no atomics are needed.
//
// Window of output (oy, ox): rows oy*s - pad .. oy*s - pad + k - 1, likewise for columns.
// Padding never contributes: the average divides by the in-image count (or by k*k when
// include_pad is set) and the max only looks at in-image pixels. The launcher guarantees
// that every window holds at least one in-image pixel (pad <= k/2, H, W >= 1).

struct Params {
    n: u32,           // threads with work: outputs (forward), input pixels (backward), planes (GAP)
    h: u32,           // input height
    w: u32,           // input width
    oh: u32,          // output height
    ow: u32,          // output width
    k: u32,           // window size (k x k)
    s: u32,           // stride
    pad: u32,         // zero padding on each side
    include_pad: u32, // 1: average divides by k*k (PyTorch count_include_pad=True)
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
// Window-local position (row * k + col, as an exact small f32) of each window's first maximum.
@group(0) @binding(3) var<storage, read_write> idx: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
const GAP_WG: u32 = 64u;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// The in-image part of one window: rows [y0, y1), columns [x0, x1), and its top-left
// corner (ys, xs) in padded coordinates (may be negative).
struct Window {
    y0: u32,
    y1: u32,
    x0: u32,
    x1: u32,
    ys: i32,
    xs: i32,
}

fn window(oy: u32, ox: u32) -> Window {
    let ys = i32(oy * p.s) - i32(p.pad);
    let xs = i32(ox * p.s) - i32(p.pad);
    let k = i32(p.k);
    return Window(
        u32(max(ys, 0)), u32(min(ys + k, i32(p.h))),
        u32(max(xs, 0)), u32(min(xs + k, i32(p.w))),
        ys, xs,
    );
}

// Average divisor of a window: k*k, or the number of in-image pixels.
fn divisor(win: Window) -> f32 {
    if (p.include_pad != 0u) {
        return f32(p.k * p.k);
    }
    return f32((win.y1 - win.y0) * (win.x1 - win.x0));
}

// Output positions whose window covers input coordinate i along an axis of olen outputs:
// [lo, hi) with oy*s - pad <= i <= oy*s - pad + k - 1.
fn covering(i: u32, olen: u32) -> vec2<u32> {
    let a = i + p.pad;
    var lo = 0u;
    if (a + 1u > p.k) {
        lo = (a + 1u - p.k + p.s - 1u) / p.s;
    }
    let hi = min(a / p.s + 1u, olen);
    return vec2<u32>(lo, max(lo, hi));
}

// The first maximal in-image pixel of a window in row-major order: (value, local position).
// Later equal values never replace it (strict >), which is the tie rule of the backward.
fn first_max(base: u32, win: Window) -> vec2<f32> {
    var best = x[base + win.y0 * p.w + win.x0];
    var at = u32(i32(win.y0) - win.ys) * p.k + u32(i32(win.x0) - win.xs);
    for (var yy = win.y0; yy < win.y1; yy++) {
        let row = base + yy * p.w;
        let ly = u32(i32(yy) - win.ys) * p.k;
        for (var xx = win.x0; xx < win.x1; xx++) {
            let v = x[row + xx];
            if (v > best) {
                best = v;
                at = ly + u32(i32(xx) - win.xs);
            }
        }
    }
    return vec2<f32>(best, f32(at));
}

// Output index i -> (plane, oy, ox).
fn out_coords(i: u32) -> vec3<u32> {
    let t = i / p.ow;
    return vec3<u32>(t / p.oh, t % p.oh, i % p.ow);
}

// Input index i -> (plane, iy, ix).
fn in_coords(i: u32) -> vec3<u32> {
    let t = i / p.w;
    return vec3<u32>(t / p.h, t % p.h, i % p.w);
}

// out[o] = (1/d) * sum over in-image window pixels of x
@compute @workgroup_size(256)
fn avg_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = out_coords(i);
    let win = window(c.y, c.z);
    let base = c.x * p.h * p.w;
    var acc = 0.0;
    for (var yy = win.y0; yy < win.y1; yy++) {
        let row = base + yy * p.w;
        for (var xx = win.x0; xx < win.x1; xx++) {
            acc += x[row + xx];
        }
    }
    out[i] = acc / divisor(win);
}

// out[o] = max over in-image window pixels of x
@compute @workgroup_size(256)
fn max_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = out_coords(i);
    out[i] = first_max(c.x * p.h * p.w, window(c.y, c.z)).x;
}

// idx[o] = window-local position of the first maximum (first pass of the max backward)
@compute @workgroup_size(256)
fn max_argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = out_coords(i);
    idx[i] = first_max(c.x * p.h * p.w, window(c.y, c.z)).y;
}

// out[i] = sum over windows o containing pixel i of dy[o] / d(o)
@compute @workgroup_size(256)
fn avg_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = in_coords(i);
    let ry = covering(c.y, p.oh);
    let rx = covering(c.z, p.ow);
    let base = c.x * p.oh * p.ow;
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        for (var ox = rx.x; ox < rx.y; ox++) {
            acc += dy[base + oy * p.ow + ox] / divisor(window(oy, ox));
        }
    }
    out[i] = acc;
}

// out[i] = sum over windows o containing pixel i whose first maximum is i of dy[o]
@compute @workgroup_size(256)
fn max_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = in_coords(i);
    let ry = covering(c.y, p.oh);
    let rx = covering(c.z, p.ow);
    let base = c.x * p.oh * p.ow;
    let a = c.y + p.pad;
    let b = c.z + p.pad;
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        // Position of pixel i inside window (oy, ox): (a - oy*s, b - ox*s), never negative here.
        let ly = (a - oy * p.s) * p.k;
        for (var ox = rx.x; ox < rx.y; ox++) {
            let o = base + oy * p.ow + ox;
            if (u32(idx[o]) == ly + b - ox * p.s) {
                acc += dy[o];
            }
        }
    }
    out[i] = acc;
}

// out[plane] = mean of x over the plane; one thread per plane (small planes).
@compute @workgroup_size(256)
fn gap_fwd_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let hw = p.h * p.w;
    let base = i * hw;
    var acc = 0.0;
    for (var j = 0u; j < hw; j++) {
        acc += x[base + j];
    }
    out[i] = acc / f32(hw);
}

var<workgroup> partial: array<f32, GAP_WG>;

// out[plane] = mean of x over the plane; one workgroup per plane (large planes):
// coalesced strided partial sums, then a tree reduction in shared memory.
@compute @workgroup_size(GAP_WG)
fn gap_fwd_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let plane = wid.x + wid.y * nwg.x;
    // plane is uniform across the workgroup, so this return keeps the barriers uniform.
    if (plane >= p.n) { return; }
    let hw = p.h * p.w;
    let base = plane * hw;
    var acc = 0.0;
    for (var j = lid.x; j < hw; j += GAP_WG) {
        acc += x[base + j];
    }
    partial[lid.x] = acc;
    workgroupBarrier();
    for (var width = GAP_WG / 2u; width > 0u; width >>= 1u) {
        if (lid.x < width) {
            partial[lid.x] += partial[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out[plane] = partial[0] / f32(hw);
    }
}

// out[i] = dy[plane of i] / (h*w)
@compute @workgroup_size(256)
fn gap_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let hw = p.h * p.w;
    out[i] = dy[i / hw] / f32(hw);
}
