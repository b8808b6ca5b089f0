//! `wgnas query "<arch string>"`: what NAS-Bench-201 says about one cell, its test
//! accuracies, ranks and percentiles on the three datasets, as text or JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::bench201::{Bench201, Bench201Record, Dataset};
use crate::space::nb201::{Nb201Arch, NUM_EDGES};
use crate::{Error, Result};

/// Looks `arch` up in the table at `table` (else `$WGNAS_NB201`) and prints the facts.
/// The string is parsed before the table is read, so a malformed one fails fast with the precise parse error.
pub fn run(arch: &str, table: Option<&Path>, json: bool) -> Result<()> {
    Nb201Arch::parse(arch)?;
    let bench = Bench201::open(table)?;
    println!("{}", report(&bench, arch, json)?);
    Ok(())
}

/// The text `run` prints: a human-readable table, or a JSON object when `json`.
pub fn report(bench: &Bench201, arch: &str, json: bool) -> Result<String> {
    let record = bench.query_str(arch)?;
    if json {
        json_report(bench, &record)
    } else {
        Ok(text_report(bench, &record))
    }
}

/// The JSON form: the record's fields in order, then the conv count and the table used.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    record: &'a Bench201Record,
    conv_count: usize,
    table: String,
}

/// The record plus `conv_count` and `table`, pretty-printed.
fn json_report(bench: &Bench201, record: &Bench201Record) -> Result<String> {
    let report =
        JsonReport { record, conv_count: record.arch.conv_count(), table: bench.source().display().to_string() };
    serde_json::to_string_pretty(&report).map_err(|e| Error::invalid("query", format!("JSON output failed: {e}")))
}

/// Aligned text: identity of the cell, then one line per dataset.
fn text_report(bench: &Bench201, r: &Bench201Record) -> String {
    let cell: Vec<String> = r.arch.edges().map(|(to, from, op)| format!("{to}←{from} {op}")).collect();
    let mut s = String::new();
    // Writing to a String cannot fail, so the fmt::Results are ignored.
    let _ = writeln!(s, "architecture     {}", r.arch);
    let _ = writeln!(s, "benchmark index  {} (of {}, 0-based)", r.index, r.total);
    let _ = writeln!(s, "edges            {}", cell.join(", "));
    let _ = writeln!(s, "conv ops         {} of {NUM_EDGES}", r.arch.conv_count());
    let _ = writeln!(s, "unique string    {}", r.unique);
    let _ = writeln!(s);
    let _ = writeln!(s, "{:<16}{:>12}{:>16}{:>12}{:>10}", "dataset", "test acc %", "rank", "percentile", "best %");
    for d in Dataset::ALL {
        let sc = r.score(d);
        let best = bench.best(d).map(|b| format!("{:.2}", b.score(d).accuracy)).unwrap_or_default();
        let rank = format!("{} / {}", sc.rank, r.total);
        let _ = writeln!(s, "{:<16}{:>12.2}{:>16}{:>12.2}{:>10}", d.name(), sc.accuracy, rank, sc.percentile, best);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "rank 1 = best (ties share the better rank); percentile = % of the table strictly worse.");
    let _ = write!(s, "table: {}", bench.source().display());
    s
}
