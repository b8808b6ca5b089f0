//! The wgnas command line.

use clap::{Parser, Subcommand};
use wgnas::gpu::{adapter, AdapterChoice, AdapterReport};
use wgnas::Gpu;

/// Gradient-based neural architecture search on any GPU.
#[derive(Parser)]
#[command(name = "wgnas", version, about)]
struct Cli {
    /// Use the adapter whose name contains this (case-insensitive).
    #[arg(long, global = true, env = "WGNAS_ADAPTER")]
    adapter: Option<String>,
    /// Restrict to one backend: vulkan, metal, dx12 or gl.
    #[arg(long, global = true, env = "WGNAS_BACKEND")]
    backend: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every GPU adapter with the limits and features that matter for compute.
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Train a small CNN on a synthetic task on the GPU and print its loss and accuracy.
    Demo {
        /// Training steps.
        #[arg(long, default_value_t = 300)]
        steps: usize,
        /// Seed of the initial weights and of the data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also train the CPU reference for the first steps and print both curves.
        #[arg(long, default_value_t = 0)]
        compare_cpu: usize,
    },
    /// Look up a cell in the NAS-Bench-201 table: test accuracies, ranks and percentiles.
    Query {
        /// Architecture string, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'.
        arch: String,
        /// The NAS-Bench-201 CSV table (default: $WGNAS_NB201).
        #[arg(long, value_name = "PATH")]
        nb201: Option<std::path::PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Measure the engine.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Each kernel at NAS shapes: ms, GFLOP/s and the ratio to the best plain matmul rate.
    Kernels {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Batch 8 and smaller matmuls (for software adapters).
        #[arg(long)]
        small: bool,
        /// Timed repetitions per kernel (default 5, or 2 with --small).
        #[arg(long)]
        reps: Option<usize>,
    },
}

fn main() {
    let cli = Cli::parse();
    let choice = AdapterChoice { name: cli.adapter.clone(), backend: cli.backend.clone() };
    if let Err(e) = run(cli.command, &choice) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(command: Command, choice: &AdapterChoice) -> wgnas::Result<()> {
    match command {
        Command::Devices { json } => devices(choice, json),
        Command::Query { arch, nb201, json } => wgnas::cli::query::run(&arch, nb201.as_deref(), json),
        Command::Demo { steps, seed, compare_cpu } => run_demo(choice, steps, seed, compare_cpu),
        Command::Bench { what: BenchCommand::Kernels { json, small, reps } } => {
            bench_kernels(choice, json, small, reps)
        }
    }
}

fn run_demo(choice: &AdapterChoice, steps: usize, seed: u64, compare_cpu: usize) -> wgnas::Result<()> {
    use wgnas::demo::{self, DemoConfig, DemoWeights};
    let gpu = Gpu::new(choice)?;
    let cfg = DemoConfig::default();
    println!("device: {}", gpu.describe());
    println!(
        "task: {}-class quadrant images {}x{}x{}, batch {}; net: conv3x3({}) - BN - ReLU - avgpool2x2 - linear",
        cfg.classes, cfg.in_channels, cfg.size, cfg.size, cfg.batch, cfg.channels
    );
    let w = DemoWeights::init(&cfg, seed);
    let t0 = std::time::Instant::now();
    let every = (steps / 20).max(1);
    let logs = demo::train_gpu(&gpu, cfg, &w, seed + 1, steps, |l| {
        if l.step % every == 0 || l.step + 1 == steps {
            println!("step {:>5}  loss {:.4}  batch accuracy {:>5.1}%", l.step, l.loss, 100.0 * l.accuracy);
        }
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let tail = &logs[logs.len().saturating_sub(20)..];
    let acc = tail.iter().map(|l| l.accuracy).sum::<f32>() / tail.len().max(1) as f32;
    println!(
        "{steps} steps in {secs:.1} s ({:.1} ms/step); accuracy over the last {} batches: {:.1}%; peak GPU memory {} KiB",
        1e3 * secs / steps.max(1) as f64,
        tail.len(),
        100.0 * acc,
        gpu.memory().peak / 1024
    );
    if compare_cpu > 0 {
        let n = compare_cpu.min(steps);
        let cpu = demo::train_cpu(cfg, &w, seed + 1, n)?;
        println!("\nstep   gpu loss    cpu-reference loss");
        for (g, c) in logs.iter().zip(&cpu) {
            println!("{:>4}   {:.6}    {:.6}", g.step, g.loss, c.loss);
        }
    }
    Ok(())
}

fn bench_kernels(choice: &AdapterChoice, json: bool, small: bool, reps: Option<usize>) -> wgnas::Result<()> {
    use wgnas::bench::kernels::{self, KernelBenchConfig};
    let gpu = Gpu::new(choice)?;
    let mut cfg = if small { KernelBenchConfig::small() } else { KernelBenchConfig::full() };
    if let Some(r) = reps {
        cfg.reps = r.max(1);
    }
    eprintln!("benchmarking kernels on {} (batch {}, {} reps each)...", gpu.describe(), cfg.batch, cfg.reps);
    let report =
        kernels::run(&gpu, cfg, &mut |row| eprintln!("  {:<22} {:<14} {:>10.3} ms", row.kernel, row.shape, row.ms))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", kernels::format_table(&report));
    }
    Ok(())
}

fn devices(choice: &AdapterChoice, json: bool) -> wgnas::Result<()> {
    let all = adapter::list_adapters(&AdapterChoice { name: None, backend: choice.backend.clone() })?;
    if all.is_empty() {
        return Err(wgnas::Error::NoAdapter { detail: String::new() });
    }
    let chosen = adapter::choose_adapter(choice).ok().map(|a| AdapterReport::of(&a));
    let reports: Vec<AdapterReport> = all.iter().map(AdapterReport::of).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default());
        return Ok(());
    }
    for r in &reports {
        let is_chosen = chosen.as_ref().is_some_and(|c| c.name == r.name && c.backend == r.backend);
        let mark = if is_chosen { "* " } else { "  " };
        println!("{mark}{r}\n");
    }
    println!("* = the adapter wgnas would use (override with --adapter NAME or --backend NAME)");
    Ok(())
}
