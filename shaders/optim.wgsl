// Optimizer update kernels, one dispatch per parameter tensor, PyTorch semantics:
// SGD (plain, momentum, Nesterov; L2 weight decay added to the gradient) and Adam
// (torch.optim.Adam: L2 weight decay, bias correction). Hyper-parameters come in the
// parameter block of every launch, so a schedule may change lr at every step.
// Bindings follow the wgnas convention (0 = params, then tensors in launcher order).

struct Params {
    n: u32,
    nesterov: u32,       // sgd_momentum: 1 = Nesterov
    lr: f32,             // sgd: learning rate; adam: lr / (1 − β1^t)
    weight_decay: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bc2_sqrt: f32,       // adam: sqrt(1 − β2^t)
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> s1: array<f32>;  // momentum buffer / exp_avg
@group(0) @binding(4) var<storage, read_write> s2: array<f32>;  // exp_avg_sq

const WG: u32 = 256u;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// g' = g + wd·p;  p -= lr·g'
@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let w = param[i];
    let g = grad[i] + p.weight_decay * w;
    param[i] = w - p.lr * g;
}

// g' = g + wd·p;  buf = μ·buf + g';  d = nesterov ? g' + μ·buf : buf;  p -= lr·d
// (buf starts at zero, so the first step gives buf = g' as in PyTorch)
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let w = param[i];
    let g = grad[i] + p.weight_decay * w;
    let buf = p.momentum * s1[i] + g;
    s1[i] = buf;
    let d = select(buf, g + p.momentum * buf, p.nesterov != 0u);
    param[i] = w - p.lr * d;
}

// g' = g + wd·p;  m = lerp(m, g', 1 − β1);  v = β2·v + (1 − β2)·g'²;
// p -= (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, nwg, lid);
    if (i >= p.n) { return; }
    let w = param[i];
    let g = grad[i] + p.weight_decay * w;
    let m = s1[i] + (1.0 - p.beta1) * (g - s1[i]);
    let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
    s1[i] = m;
    s2[i] = v;
    param[i] = w - p.lr * m / (sqrt(v) / p.bc2_sqrt + p.eps);
}
