//! The wgnas command line.

use clap::{Parser, Subcommand};
use wgnas::gpu::{adapter, AdapterChoice, AdapterReport};

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
    }
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
