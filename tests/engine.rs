//! Engine-level behaviour: limits give errors, memory is accounted, a step is one
//! submission, pipelines are compiled once, readback can be deferred.

mod common;
use common::*;
use wgnas::gpu::timer::Timer;
use wgnas::ops::eltwise;
use wgnas::{Error, Tensor};

#[test]
fn tensor_over_the_device_limit_is_an_error_naming_it() {
    let limit = gpu().limits().max_storage_buffer_binding_size as usize;
    let n = limit / 4 + 1;
    let err = Tensor::empty(gpu(), &[n], "huge activation").unwrap_err();
    match &err {
        Error::TooLarge { tensor, limit_name, .. } => {
            assert_eq!(tensor, "huge activation");
            assert!(limit_name.contains("max_"), "{limit_name}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("huge activation") && msg.contains("smaller batch"), "{msg}");
    // An element count that overflows u64 bytes is an error too, not a wrap-around.
    assert!(Tensor::empty(gpu(), &[usize::MAX / 2, 4], "overflow").is_err());
}

#[test]
fn upload_with_wrong_length_and_bad_reshape_are_errors() {
    assert!(matches!(Tensor::from_slice(gpu(), &[1.0, 2.0], &[3], "x"), Err(Error::Shape { .. })));
    let t = up(&[1.0; 6], &[2, 3]);
    assert!(t.reshape(&[3, 2]).is_ok());
    assert!(matches!(t.reshape(&[4, 2]), Err(Error::Shape { .. })));
    assert!(matches!(t.dims4("conv"), Err(Error::Shape { .. })));
}

#[test]
fn pool_counts_live_and_peak_bytes_and_reuses_buffers() {
    // Other tests share the GPU, so measure deltas on a size class nobody else uses.
    let n = 777_777;
    let before = gpu().memory();
    let a = Tensor::zeros(gpu(), &[n], "a").unwrap();
    let mid = gpu().memory();
    assert!(mid.live >= before.live + n as u64 * 4, "{before:?} -> {mid:?}");
    assert!(mid.peak >= mid.live);
    let buf_ptr = format!("{:?}", a.buffer());
    drop(a);
    let after = gpu().memory();
    assert!(after.cached >= n as u64 * 4, "freed buffer is cached for reuse: {after:?}");
    let b = Tensor::zeros(gpu(), &[n], "b").unwrap();
    assert_eq!(format!("{:?}", b.buffer()), buf_ptr, "same size class reuses the buffer");
    assert!(down(&b).iter().all(|&v| v == 0.0));
}

#[test]
fn a_recorded_sequence_is_one_submission_and_pipelines_are_cached() {
    // A private device, so that no other test's work lands in the counters.
    let gpu = &wgnas::Gpu::from_env().expect("adapter");
    let x = Tensor::from_slice(gpu, &randn(5, 4096), &[4096], "x").unwrap();
    let step = || -> wgnas::Result<()> {
        for _ in 0..50 {
            let y = eltwise::relu_forward(gpu, &x)?;
            eltwise::axpy(gpu, &y, 0.5, &x)?;
        }
        Ok(())
    };
    step().unwrap();
    gpu.wait().unwrap();
    let compiled = gpu.pipelines_compiled();
    let w0 = gpu.work();
    step().unwrap();
    gpu.flush().unwrap();
    let w1 = gpu.work();
    assert_eq!(w1.dispatches - w0.dispatches, 100);
    assert_eq!(w1.submissions - w0.submissions, 1, "100 dispatches and their uploads go in one submission");
    assert_eq!(gpu.pipelines_compiled(), compiled, "no pipeline is compiled twice");
}

#[test]
fn deferred_readback_delivers_values_without_blocking_the_caller() {
    let x = up(&[1.0, -2.0, 3.0], &[3]);
    let y = eltwise::relu_forward(gpu(), &x).unwrap();
    let mut pending = y.read_async(gpu()).unwrap();
    // Poll without blocking until the copy lands (a training loop would do other work here).
    let values = loop {
        match pending.try_take(gpu()).unwrap() {
            Ok(v) => break v,
            Err(p) => {
                pending = p;
                std::thread::yield_now();
            }
        }
    };
    assert_eq!(values, vec![1.0, 0.0, 3.0]);
}

#[test]
fn timer_measures_positive_time() {
    let x = up(&randn(6, 1 << 16), &[1 << 16]);
    let y = up(&randn(7, 1 << 16), &[1 << 16]);
    let timer = Timer::new(gpu());
    let ms = timer
        .time(gpu(), || {
            for _ in 0..10 {
                eltwise::axpy(gpu(), &y, 0.5, &x)?;
            }
            Ok(())
        })
        .unwrap();
    assert!(ms > 0.0 && ms.is_finite(), "{ms} ms ({:?})", timer.clock());
}

#[test]
fn writing_a_tensor_that_is_also_an_input_is_an_error() {
    let x = up(&[1.0, 2.0], &[2]);
    let e = eltwise::axpy(gpu(), &x, 0.5, &x).unwrap_err().to_string();
    assert!(e.contains("axpy") && e.contains("written"), "{e}");
    // The GPU is still usable afterwards.
    assert_eq!(down(&x), vec![1.0, 2.0]);
}

#[test]
fn a_missing_adapter_is_an_error_that_says_how_to_get_one() {
    let choice = wgnas::gpu::AdapterChoice { name: Some("no-such-adapter-xyz".into()), backend: None };
    let e = wgnas::Gpu::new(&choice).unwrap_err();
    assert!(matches!(e, Error::NoAdapter { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("no-such-adapter-xyz") && msg.contains("apt-get install mesa-vulkan-drivers"), "{msg}");
}

#[test]
fn a_training_step_is_one_submission_and_frees_its_activations() {
    use wgnas::demo::{DemoConfig, DemoWeights, GpuDemo};
    // A private device so the counters see only this test's work.
    let gpu = &wgnas::Gpu::from_env().expect("adapter");
    let cfg = DemoConfig::default();
    let mut net = GpuDemo::new(gpu, cfg, &DemoWeights::init(&cfg, 1)).unwrap();
    let (x, y) = wgnas::demo::synthetic_batch(&cfg, &mut wgnas::util::rng::Rng::new(2));
    let xt = Tensor::from_slice(gpu, &x, &[cfg.batch, cfg.in_channels, cfg.size, cfg.size], "x").unwrap();
    let yt = Tensor::from_slice(gpu, &y, &[cfg.batch], "y").unwrap();
    // The first step creates the momentum buffers; measure the second.
    drop(net.step(gpu, &xt, &yt).unwrap());
    gpu.wait().unwrap();
    let live_before = gpu.memory().live;
    let w0 = gpu.work();
    let (loss, correct) = net.step(gpu, &xt, &yt).unwrap();
    gpu.flush().unwrap();
    let w1 = gpu.work();
    assert_eq!(w1.submissions - w0.submissions, 1, "forward + backward + SGD in one submission");
    assert!(w1.dispatches - w0.dispatches > 10);
    // Only the two logged scalars outlive the step: every activation and gradient was freed.
    let live_after = gpu.memory().live;
    let scalar = wgnas::gpu::pool::size_class(loss.byte_len());
    assert_eq!(live_after - live_before, 2 * scalar, "{live_before} -> {live_after}");
    drop((loss, correct));
    assert_eq!(gpu.memory().live, live_before);
}

#[test]
fn pack_concatenates_tensors_in_order() {
    let a = up(&[1.0, 2.0], &[2]);
    let b = up(&[3.0], &[1]);
    let c = up(&[4.0, 5.0, 6.0, 7.0], &[2, 2]);
    let p = Tensor::pack(gpu(), &[&a, &b, &c], "packed").unwrap();
    assert_eq!(p.shape(), &[7]);
    assert_eq!(down(&p), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
}
