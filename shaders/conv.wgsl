// 2-D convolution kernels (x NCHW, w OIHW, y NCHW), launched by src/ops/conv/launch.rs:
// - conv_fwd, conv_bwd_data, conv_bwd_weight: implicit GEMMs for any groups, each invocation
//   holding a 4×4 register tile (4 channels × 4 pixels, or 4 channels × 4 weight columns);
// - dw_fwd, dw_bwd_data, dw_bwd_weight: depthwise (one input channel per group, C_out = m·C_in),
//   each invocation 4 pixels (or 4 kernel taps) of one channel;
// - bias_grad: per-channel sums of dy over chunks of N·OH·OW;
// - sum_splits: adds the split-K partials of bias_grad and the two weight-gradient kernels.
//
// No shared memory and no barriers (slow on lavapipe): register tiles give the reuse, and the
// long weight-gradient reductions are split across workgroups (split-K) instead of within one.
// Invocations that fall past a tile edge clamp their *reads* to a valid index and never store.
// Grids may be 2-D (see Gpu::grid): the linear workgroup index is wid.x + wid.y * nwg.x.

struct Params {
    n: u32, c_in: u32, h: u32, w: u32,
    c_out: u32, oh: u32, ow: u32, kh: u32,
    kw: u32, sh: u32, sw: u32, ph: u32,
    pw: u32, dh: u32, dw: u32, groups: u32,
    cin_g: u32, cout_g: u32, has_bias: u32, splits: u32,
    chunk: u32, len: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read> part: array<f32>;

// Threads along pixels (X) and along channels (Y) of the generic forward / backward-data tiles;
// the launcher trades Y for X when a group has few channels, so the tile is not wasted.
override TILE_X: u32 = 16u;
override TILE_Y: u32 = 4u;
// Threads of the 1-D kernels (depthwise, weight and bias gradients, split sums).
override WG: u32 = 64u;
// Strides of the backward-data kernels (equal to p.sh, p.sw): as constants, their divisibility
// tests and divisions compile to shifts or multiplies instead of slow integer divisions.
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;

const LANES = vec4<u32>(0u, 1u, 2u, 3u);

fn cdiv(a: u32, b: u32) -> u32 {
    return (a + b - 1u) / b;
}

fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Four positions first + step·(0..3) of a flattened [images, rows, cols] index space.
struct Quad {
    ok: vec4<bool>,   // position < total
    n: vec4<u32>,     // image
    q: vec4<u32>,     // row·cols + col within the image
    r: vec4<i32>,     // row
    c: vec4<i32>,     // col
}

fn quad(first: u32, step: u32, total: u32, rows: u32, cols: u32) -> Quad {
    let idx = vec4<u32>(first) + LANES * step;
    let plane = rows * cols;
    let q = idx % plane;
    return Quad(idx < vec4<u32>(total), idx / plane, q, vec4<i32>(q / cols), vec4<i32>(q % cols));
}

fn inside(r: vec4<i32>, rows: u32) -> vec4<bool> {
    return (r >= vec4<i32>(0)) & (r < vec4<i32>(i32(rows)));
}

// For output-gradient rows t = input row + pad − tap·dil: valid where t = o·stride with 0 ≤ o < rows.
fn hits(t: vec4<i32>, stride: u32, rows: u32) -> vec4<bool> {
    let u = vec4<u32>(t);
    return (t >= vec4<i32>(0)) & (u % stride == vec4<u32>(0u)) & (u < vec4<u32>(rows * stride));
}

// Masked gathers: lanes that are not ok read index o (kept in bounds by the caller) and give 0.
fn x4(o: vec4<u32>, ok: vec4<bool>) -> vec4<f32> {
    return select(vec4<f32>(0.0), vec4<f32>(x[o.x], x[o.y], x[o.z], x[o.w]), ok);
}

fn dy4(o: vec4<u32>, ok: vec4<bool>) -> vec4<f32> {
    return select(vec4<f32>(0.0), vec4<f32>(dy[o.x], dy[o.y], dy[o.z], dy[o.w]), ok);
}

fn wt4(o: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(wt[o.x], wt[o.y], wt[o.z], wt[o.w]);
}

// out[(n·chans + c)·plane + q] = v for the lanes that are ok.
fn store4(v: vec4<f32>, ok: vec4<bool>, n: vec4<u32>, q: vec4<u32>, c: u32, chans: u32, plane: u32) {
    let o = (n * chans + c) * plane + q;
    if (ok.x) { out[o.x] = v.x; }
    if (ok.y) { out[o.y] = v.y; }
    if (ok.z) { out[o.z] = v.z; }
    if (ok.w) { out[o.w] = v.w; }
}

fn bias_of(c: u32) -> f32 {
    if (p.has_bias != 0u) { return bias[c]; }
    return 0.0;
}

// y[n, co, oy, ox] = b[co] + Σ_{ci<Cg, ky, kx} w[co, ci, ky, kx] · x[n, g·Cg + ci, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw]
// GEMM view: M = C_out/groups, N = batch·OH·OW, K = Cg·KH·KW. A workgroup covers 4·TILE_Y channels
// of one group × 4·TILE_X pixels; lane (i, j) of an invocation is channel lid.y + i·TILE_Y and
// pixel lid.x + j·TILE_X of the tile, so neighbouring invocations read neighbouring pixels.
@compute @workgroup_size(TILE_X, TILE_Y)
fn conv_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let ohw = p.oh * p.ow;
    let hw = p.h * p.w;
    let kk = p.kh * p.kw;
    let pix_tiles = cdiv(p.n * ohw, 4u * TILE_X);
    let ch_tiles = cdiv(p.cout_g, 4u * TILE_Y);
    let b = wg_index(wid, nwg);
    let g = b / (pix_tiles * ch_tiles);
    if (g >= p.groups) { return; }
    let r = b % (pix_tiles * ch_tiles);
    let px = quad((r % pix_tiles) * 4u * TILE_X + lid.x, TILE_X, p.n * ohw, p.oh, p.ow);
    let co = vec4<u32>((r / pix_tiles) * 4u * TILE_Y + lid.y) + LANES * TILE_Y;
    let co_ok = co < vec4<u32>(p.cout_g);
    // w[g·Cog + co, 0, 0, 0], clamped for channels past the group (never stored).
    let wrow = (vec4<u32>(g * p.cout_g) + min(co, vec4<u32>(p.cout_g - 1u))) * (p.cin_g * kk);
    let xbase = (px.n * p.c_in + g * p.cin_g) * hw;
    let y0 = px.r * i32(p.sh) - i32(p.ph);
    let x0 = px.c * i32(p.sw) - i32(p.pw);

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = y0 + i32(ky * p.dh);
        let oky = px.ok & inside(iy, p.h);
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = x0 + i32(kx * p.dw);
            let ok = oky & inside(ix, p.w);
            // Masked lanes read channel plane starts (ci·hw), which exist.
            let xo = select(vec4<u32>(0u), xbase + vec4<u32>(iy) * p.w + vec4<u32>(ix), ok);
            let wo = wrow + ky * p.kw + kx;
            for (var ci = 0u; ci < p.cin_g; ci++) {
                let xv = x4(xo + ci * hw, ok);
                let wv = wt4(wo + ci * kk);
                a0 += wv.x * xv;
                a1 += wv.y * xv;
                a2 += wv.z * xv;
                a3 += wv.w * xv;
            }
        }
    }
    let c = g * p.cout_g + co;
    store4(a0 + bias_of(c.x), px.ok & vec4<bool>(co_ok.x), px.n, px.q, c.x, p.c_out, ohw);
    store4(a1 + bias_of(c.y), px.ok & vec4<bool>(co_ok.y), px.n, px.q, c.y, p.c_out, ohw);
    store4(a2 + bias_of(c.z), px.ok & vec4<bool>(co_ok.z), px.n, px.q, c.z, p.c_out, ohw);
    store4(a3 + bias_of(c.w), px.ok & vec4<bool>(co_ok.w), px.n, px.q, c.w, p.c_out, ohw);
}

// dx[n, g·Cg + ci, iy, ix] = Σ_{co<Cog, ky, kx} w[g·Cog + co, ci, ky, kx] · dy[n, g·Cog + co, oy, ox]
// over the taps with iy + ph − ky·dh = oy·sh and ix + pw − kx·dw = ox·sw (a gather: no atomics).
// Tiled like conv_fwd with input channels for output channels and input pixels for output pixels.
@compute @workgroup_size(TILE_X, TILE_Y)
fn conv_bwd_data(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let ohw = p.oh * p.ow;
    let hw = p.h * p.w;
    let kk = p.kh * p.kw;
    let pix_tiles = cdiv(p.n * hw, 4u * TILE_X);
    let ch_tiles = cdiv(p.cin_g, 4u * TILE_Y);
    let b = wg_index(wid, nwg);
    let g = b / (pix_tiles * ch_tiles);
    if (g >= p.groups) { return; }
    let r = b % (pix_tiles * ch_tiles);
    let px = quad((r % pix_tiles) * 4u * TILE_X + lid.x, TILE_X, p.n * hw, p.h, p.w);
    let ci = vec4<u32>((r / pix_tiles) * 4u * TILE_Y + lid.y) + LANES * TILE_Y;
    let ci_ok = ci < vec4<u32>(p.cin_g);
    // w[g·Cog, ci, 0, 0]; consecutive output channels are Cg·KK apart.
    let wcol = (vec4<u32>(g * p.cout_g * p.cin_g) + min(ci, vec4<u32>(p.cin_g - 1u))) * kk;
    let wstep = p.cin_g * kk;
    let dybase = (px.n * p.c_out + g * p.cout_g) * ohw;
    let y0 = px.r + i32(p.ph);
    let x0 = px.c + i32(p.pw);

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = y0 - i32(ky * p.dh);
        let oky = px.ok & hits(ty, STRIDE_H, p.oh);
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = x0 - i32(kx * p.dw);
            let ok = oky & hits(tx, STRIDE_W, p.ow);
            let oy = vec4<u32>(ty) / STRIDE_H;
            let ox = vec4<u32>(tx) / STRIDE_W;
            let dyo = select(vec4<u32>(0u), dybase + oy * p.ow + ox, ok);
            let wo = wcol + ky * p.kw + kx;
            for (var co = 0u; co < p.cout_g; co++) {
                let dv = dy4(dyo + co * ohw, ok);
                let wv = wt4(wo + co * wstep);
                a0 += wv.x * dv;
                a1 += wv.y * dv;
                a2 += wv.z * dv;
                a3 += wv.w * dv;
            }
        }
    }
    let c = g * p.cin_g + ci;
    store4(a0, px.ok & vec4<bool>(ci_ok.x), px.n, px.q, c.x, p.c_in, hw);
    store4(a1, px.ok & vec4<bool>(ci_ok.y), px.n, px.q, c.y, p.c_in, hw);
    store4(a2, px.ok & vec4<bool>(ci_ok.z), px.n, px.q, c.z, p.c_in, hw);
    store4(a3, px.ok & vec4<bool>(ci_ok.w), px.n, px.q, c.w, p.c_in, hw);
}

// Position (image, row, col) of flattened output pixel k, advanced one pixel at a time so the
// reduction loops need no divisions.
struct Walk {
    n: u32,
    y: u32,
    x: u32,
}

fn walk_start(k: u32) -> Walk {
    let q = k % (p.oh * p.ow);
    return Walk(k / (p.oh * p.ow), q / p.ow, q % p.ow);
}

fn walk_next(w: Walk) -> Walk {
    var v = w;
    v.x += 1u;
    if (v.x == p.ow) {
        v.x = 0u;
        v.y += 1u;
        if (v.y == p.oh) {
            v.y = 0u;
            v.n += 1u;
        }
    }
    return v;
}

// The split-K range [s·chunk, min((s+1)·chunk, N·OH·OW)) of output pixels, as (first, end).
fn split_range(s: u32) -> vec2<u32> {
    let k0 = s * p.chunk;
    return vec2<u32>(k0, min(k0 + p.chunk, p.n * p.oh * p.ow));
}

// Partial dw[co, ci, ky, kx] over the pixels of split s (written to out[s, co, ci·KK + tap], or
// straight into dw when there is one split):
//   Σ_{n, oy, ox} dy[n, g·Cog + co, oy, ox] · x[n, g·Cg + ci, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw]
// GEMM view: M = Cog, N = Cg·KH·KW weight columns, K = N·OH·OW; an invocation holds 4 channels ×
// 4 consecutive columns and walks its K range.
@compute @workgroup_size(WG)
fn conv_bwd_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let ohw = p.oh * p.ow;
    let hw = p.h * p.w;
    let kk = p.kh * p.kw;
    let cols = p.cin_g * kk;
    let col_tiles = cdiv(cols, 4u);
    let co_tiles = cdiv(p.cout_g, 4u);
    let per_split = p.groups * co_tiles * col_tiles;
    let wgs = cdiv(per_split, WG);
    let b = wg_index(wid, nwg);
    let s = b / wgs;
    let t = (b % wgs) * WG + lid.x;
    if (s >= p.splits || t >= per_split) { return; }
    let g = t / (co_tiles * col_tiles);
    let co = (t / col_tiles) % co_tiles * 4u + LANES;
    let col = t % col_tiles * 4u + LANES;
    let co_ok = co < vec4<u32>(p.cout_g);
    let col_ok = col < vec4<u32>(cols);
    let colc = min(col, vec4<u32>(cols - 1u));
    let tap = colc % kk;
    // Per column: channel plane offset of x, and the tap's row/col shift relative to oy·sh, ox·sw.
    let xch = (g * p.cin_g + colc / kk) * hw;
    let ydel = vec4<i32>(tap / p.kw * p.dh) - i32(p.ph);
    let xdel = vec4<i32>(tap % p.kw * p.dw) - i32(p.pw);
    let dych = (g * p.cout_g + min(co, vec4<u32>(p.cout_g - 1u))) * ohw;

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    let range = split_range(s);
    var at = walk_start(range.x);
    for (var k = range.x; k < range.y; k++) {
        let dv = dy4(dych + (at.n * p.c_out * ohw + at.y * p.ow + at.x), vec4<bool>(true));
        let iy = i32(at.y * p.sh) + ydel;
        let ix = i32(at.x * p.sw) + xdel;
        let ok = inside(iy, p.h) & inside(ix, p.w);
        let xo = select(vec4<u32>(0u), at.n * p.c_in * hw + xch + vec4<u32>(iy) * p.w + vec4<u32>(ix), ok);
        let xv = x4(xo, ok);
        a0 += dv.x * xv;
        a1 += dv.y * xv;
        a2 += dv.z * xv;
        a3 += dv.w * xv;
        at = walk_next(at);
    }
    // Row co of the [C_out, cols] weight matrix of split s.
    let base = s * p.c_out * cols + (g * p.cout_g) * cols;
    store_row(a0, col_ok & vec4<bool>(co_ok.x), base + co.x * cols + col);
    store_row(a1, col_ok & vec4<bool>(co_ok.y), base + co.y * cols + col);
    store_row(a2, col_ok & vec4<bool>(co_ok.z), base + co.z * cols + col);
    store_row(a3, col_ok & vec4<bool>(co_ok.w), base + co.w * cols + col);
}

// out[o] = v for the lanes that are ok.
fn store_row(v: vec4<f32>, ok: vec4<bool>, o: vec4<u32>) {
    if (ok.x) { out[o.x] = v.x; }
    if (ok.y) { out[o.y] = v.y; }
    if (ok.z) { out[o.z] = v.z; }
    if (ok.w) { out[o.w] = v.w; }
}

// Depthwise forward (Cg = 1, m = C_out / C_in): y[n, co, oy, ox] = b[co] +
//   Σ_{ky, kx} w[co, 0, ky, kx] · x[n, co / m, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw].
// A workgroup covers 4·WG pixels of one (n, co) plane, so every invocation reads the same weights.
@compute @workgroup_size(WG)
fn dw_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let ohw = p.oh * p.ow;
    let kk = p.kh * p.kw;
    let tiles = cdiv(ohw, 4u * WG);
    let b = wg_index(wid, nwg);
    let plane = b / tiles;
    if (plane >= p.n * p.c_out) { return; }
    let n = plane / p.c_out;
    let co = plane % p.c_out;
    let px = quad((b % tiles) * 4u * WG + lid.x, WG, ohw, p.oh, p.ow);
    let xbase = (n * p.c_in + co / p.cout_g) * p.h * p.w;
    let y0 = px.r * i32(p.sh) - i32(p.ph);
    let x0 = px.c * i32(p.sw) - i32(p.pw);
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = y0 + i32(ky * p.dh);
        let oky = px.ok & inside(iy, p.h);
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = x0 + i32(kx * p.dw);
            let ok = oky & inside(ix, p.w);
            let xo = xbase + select(vec4<u32>(0u), vec4<u32>(iy) * p.w + vec4<u32>(ix), ok);
            acc += wt[co * kk + ky * p.kw + kx] * x4(xo, ok);
        }
    }
    store4(acc + bias_of(co), px.ok, vec4<u32>(n), px.q, co, p.c_out, ohw);
}

// Depthwise backward-data: dx[n, ci, iy, ix] = Σ_{j<m, ky, kx} w[ci·m + j, 0, ky, kx] · dy[n, ci·m + j, oy, ox]
// over the taps with iy + ph − ky·dh = oy·sh and ix + pw − kx·dw = ox·sw. Tiled like dw_fwd.
@compute @workgroup_size(WG)
fn dw_bwd_data(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let ohw = p.oh * p.ow;
    let hw = p.h * p.w;
    let kk = p.kh * p.kw;
    let m = p.cout_g;
    let tiles = cdiv(hw, 4u * WG);
    let b = wg_index(wid, nwg);
    let plane = b / tiles;
    if (plane >= p.n * p.c_in) { return; }
    let n = plane / p.c_in;
    let ci = plane % p.c_in;
    let px = quad((b % tiles) * 4u * WG + lid.x, WG, hw, p.h, p.w);
    let dybase = (n * p.c_out + ci * m) * ohw;
    let y0 = px.r + i32(p.ph);
    let x0 = px.c + i32(p.pw);
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = y0 - i32(ky * p.dh);
        let oky = px.ok & hits(ty, STRIDE_H, p.oh);
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = x0 - i32(kx * p.dw);
            let ok = oky & hits(tx, STRIDE_W, p.ow);
            let dyo = dybase + select(vec4<u32>(0u), vec4<u32>(ty) / STRIDE_H * p.ow + vec4<u32>(tx) / STRIDE_W, ok);
            for (var j = 0u; j < m; j++) {
                acc += wt[(ci * m + j) * kk + ky * p.kw + kx] * dy4(dyo + j * ohw, ok);
            }
        }
    }
    store4(acc, px.ok, vec4<u32>(n), px.q, ci, p.c_in, hw);
}

// Depthwise partial weight gradient over the pixels of split s (layout as conv_bwd_weight):
//   dw[co, 0, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, co / m, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw].
// An invocation holds 4 consecutive taps of one channel, so each dy value is loaded once for 4 FMAs.
@compute @workgroup_size(WG)
fn dw_bwd_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let ohw = p.oh * p.ow;
    let hw = p.h * p.w;
    let kk = p.kh * p.kw;
    let quads = cdiv(kk, 4u);
    let per_split = p.c_out * quads;
    let wgs = cdiv(per_split, WG);
    let b = wg_index(wid, nwg);
    let s = b / wgs;
    let t = (b % wgs) * WG + lid.x;
    if (s >= p.splits || t >= per_split) { return; }
    let co = t / quads;
    let tap = t % quads * 4u + LANES;
    let tap_ok = tap < vec4<u32>(kk);
    let tapc = min(tap, vec4<u32>(kk - 1u));
    let ydel = vec4<i32>(tapc / p.kw * p.dh) - i32(p.ph);
    let xdel = vec4<i32>(tapc % p.kw * p.dw) - i32(p.pw);
    let xch = co / p.cout_g * hw;

    var acc = vec4<f32>(0.0);
    let range = split_range(s);
    var at = walk_start(range.x);
    for (var k = range.x; k < range.y; k++) {
        let dv = dy[(at.n * p.c_out + co) * ohw + at.y * p.ow + at.x];
        let iy = i32(at.y * p.sh) + ydel;
        let ix = i32(at.x * p.sw) + xdel;
        let ok = inside(iy, p.h) & inside(ix, p.w);
        let xo = at.n * p.c_in * hw + xch + select(vec4<u32>(0u), vec4<u32>(iy) * p.w + vec4<u32>(ix), ok);
        acc += dv * x4(xo, ok);
        at = walk_next(at);
    }
    store_row(acc, tap_ok, vec4<u32>(s * p.c_out * kk + co * kk) + tap);
}

// Partial bias gradient: out[s, c] = Σ over the pixels k of split s of dy[n(k), c, q(k)].
@compute @workgroup_size(WG)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = wg_index(wid, nwg) * WG + lid.x;
    let c = t % p.c_out;
    let s = t / p.c_out;
    if (s >= p.splits) { return; }
    let ohw = p.oh * p.ow;
    let range = split_range(s);
    var n = range.x / ohw;
    var q = range.x % ohw;
    var acc = 0.0;
    for (var k = range.x; k < range.y; k++) {
        acc += dy[(n * p.c_out + c) * ohw + q];
        q += 1u;
        if (q == ohw) {
            q = 0u;
            n += 1u;
        }
    }
    out[s * p.c_out + c] = acc;
}

// out[i] = Σ_{s < splits} part[s·len + i]: the second pass of split-K.
@compute @workgroup_size(WG)
fn sum_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = wg_index(wid, nwg) * WG + lid.x;
    if (i >= p.len) { return; }
    var acc = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        acc += part[s * p.len + i];
    }
    out[i] = acc;
}
