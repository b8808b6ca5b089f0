// Matrix products for linear layers: C = op(A)·op(B) (+ a bias per column), register-tiled,
// and the column sum that gives a linear layer's bias gradient.
//
// Transposes cost nothing: the launcher passes each operand's element strides along its
// two logical dimensions, so x·Wᵀ, dy·W and dyᵀ·x all read the stored tensors directly.
//
// Tiling: each invocation keeps an 8×8 tile of C in 16 vec4 registers (rows m0 + i·WG_M,
// columns n0 + j·WG_N, so neighbouring invocations read neighbouring columns of B and
// write neighbouring columns of C). There is no shared-memory tile: workgroup barriers are
// very slow on software Vulkan (lavapipe). Measured there at 512³ (CPU time per core):
// 4×4 tile 3.8 GFLOP/s, 8×4 5.2, 8×8 7.3, 16×8 8.5; 8×8 is kept as the balance with
// occupancy on real GPUs. The tile is unrolled by hand on purpose: the same loop written
// over local arrays ran at half the speed, because the arrays were not promoted to registers.

struct Params {
    m: u32,         // rows of C
    n: u32,         // columns of C
    k: u32,         // inner dimension
    has_bias: u32,  // 1: add bias[col] to every row of C
    a_sm: u32,      // stride of op(A) along m
    a_sk: u32,      // stride of op(A) along k
    b_sk: u32,      // stride of op(B) along k
    b_sn: u32,      // stride of op(B) along n
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Invocations per workgroup along n (x) and m (y); the launcher sizes the grid from them.
override WG_N: u32 = 8u;
override WG_M: u32 = 8u;
// Rows and columns of C per invocation (the unrolled code below is written for 8×8).
const TM: u32 = 8u;
const TN: u32 = 8u;

// Stores columns n, n + WG_N, n + 2·WG_N, n + 3·WG_N of row m, skipping the out-of-range ones.
fn store4(m: u32, n: u32, v: vec4<f32>) {
    if (m >= p.m) { return; }
    for (var j = 0u; j < 4u; j++) {
        let col = n + j * WG_N;
        if (col < p.n) {
            var x = v[j];
            if (p.has_bias != 0u) { x += bias[col]; }
            c[m * p.n + col] = x;
        }
    }
}

@compute @workgroup_size(WG_N, WG_M)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m0 = wid.y * WG_M * TM + lid.y;
    let n0 = wid.x * WG_N * TN + lid.x;
    // Out-of-range rows and columns read a clamped (valid) index and are not stored,
    // which keeps the inner loop free of bounds checks.
    let lm = p.m - 1u;
    let ln = p.n - 1u;
    let r0 = min(m0 + 0u * WG_M, lm) * p.a_sm;
    let r1 = min(m0 + 1u * WG_M, lm) * p.a_sm;
    let r2 = min(m0 + 2u * WG_M, lm) * p.a_sm;
    let r3 = min(m0 + 3u * WG_M, lm) * p.a_sm;
    let r4 = min(m0 + 4u * WG_M, lm) * p.a_sm;
    let r5 = min(m0 + 5u * WG_M, lm) * p.a_sm;
    let r6 = min(m0 + 6u * WG_M, lm) * p.a_sm;
    let r7 = min(m0 + 7u * WG_M, lm) * p.a_sm;
    let s = vec4<u32>(0u, 1u, 2u, 3u) * WG_N;
    let c0 = min(vec4<u32>(n0) + s, vec4<u32>(ln)) * p.b_sn;
    let c1 = min(vec4<u32>(n0 + 4u * WG_N) + s, vec4<u32>(ln)) * p.b_sn;
    // x{row}{half}: row i of the tile, columns 0-3 (half 0) or 4-7 (half 1).
    var x00 = vec4<f32>(); var x01 = vec4<f32>();
    var x10 = vec4<f32>(); var x11 = vec4<f32>();
    var x20 = vec4<f32>(); var x21 = vec4<f32>();
    var x30 = vec4<f32>(); var x31 = vec4<f32>();
    var x40 = vec4<f32>(); var x41 = vec4<f32>();
    var x50 = vec4<f32>(); var x51 = vec4<f32>();
    var x60 = vec4<f32>(); var x61 = vec4<f32>();
    var x70 = vec4<f32>(); var x71 = vec4<f32>();
    var ka = 0u;
    var kb = 0u;
    for (var kk = 0u; kk < p.k; kk++) {
        let b0 = vec4<f32>(b[kb + c0.x], b[kb + c0.y], b[kb + c0.z], b[kb + c0.w]);
        let b1 = vec4<f32>(b[kb + c1.x], b[kb + c1.y], b[kb + c1.z], b[kb + c1.w]);
        let a0 = a[r0 + ka]; x00 = fma(vec4(a0), b0, x00); x01 = fma(vec4(a0), b1, x01);
        let a1 = a[r1 + ka]; x10 = fma(vec4(a1), b0, x10); x11 = fma(vec4(a1), b1, x11);
        let a2 = a[r2 + ka]; x20 = fma(vec4(a2), b0, x20); x21 = fma(vec4(a2), b1, x21);
        let a3 = a[r3 + ka]; x30 = fma(vec4(a3), b0, x30); x31 = fma(vec4(a3), b1, x31);
        let a4 = a[r4 + ka]; x40 = fma(vec4(a4), b0, x40); x41 = fma(vec4(a4), b1, x41);
        let a5 = a[r5 + ka]; x50 = fma(vec4(a5), b0, x50); x51 = fma(vec4(a5), b1, x51);
        let a6 = a[r6 + ka]; x60 = fma(vec4(a6), b0, x60); x61 = fma(vec4(a6), b1, x61);
        let a7 = a[r7 + ka]; x70 = fma(vec4(a7), b0, x70); x71 = fma(vec4(a7), b1, x71);
        ka += p.a_sk;
        kb += p.b_sk;
    }
    let n1 = n0 + 4u * WG_N;
    store4(m0 + 0u * WG_M, n0, x00); store4(m0 + 0u * WG_M, n1, x01);
    store4(m0 + 1u * WG_M, n0, x10); store4(m0 + 1u * WG_M, n1, x11);
    store4(m0 + 2u * WG_M, n0, x20); store4(m0 + 2u * WG_M, n1, x21);
    store4(m0 + 3u * WG_M, n0, x30); store4(m0 + 3u * WG_M, n1, x31);
    store4(m0 + 4u * WG_M, n0, x40); store4(m0 + 4u * WG_M, n1, x41);
    store4(m0 + 5u * WG_M, n0, x50); store4(m0 + 5u * WG_M, n1, x51);
    store4(m0 + 6u * WG_M, n0, x60); store4(m0 + 6u * WG_M, n1, x61);
    store4(m0 + 7u * WG_M, n0, x70); store4(m0 + 7u * WG_M, n1, x71);
}

// c[col] = Σ_row a[row·n + col] for a row-major [m, n] matrix (bias gradient = column sums of dy).
@compute @workgroup_size(256)
fn col_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = (wid.x + wid.y * nwg.x) * 256u + lid.x;
    if (col >= p.n) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.m; r++) {
        s += a[r * p.n + col];
    }
    c[col] = s;
}
