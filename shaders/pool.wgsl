// pool kernels: being written.
@compute @workgroup_size(1)
fn placeholder_pool() {}
