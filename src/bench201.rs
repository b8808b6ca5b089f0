//! NAS-Bench-201 ground truth: load the 200-epoch test-accuracy table of all
//! 15,625 cells, and answer "how good is this architecture?" with its accuracies,
//! ranks and percentiles on CIFAR-10, CIFAR-100 and ImageNet16-120.
//!
//! The table is a CSV with the columns `CIFAR10TestAccuracy200Epochs`,
//! `CIFAR100TestAccuracy200Epochs`, `ImageNetTestAccuracy200Epochs`,
//! `ArchitectureString` and `UniqueString` (in any order); data row i is benchmark
//! index i. The file is third-party data: it is never bundled, the user points to
//! it with a path or the `WGNAS_NB201` environment variable.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::space::nb201::Nb201Arch;
use crate::{Error, Result};

/// Number of architectures in NAS-Bench-201 (5 ops on 6 edges: 5⁶).
pub const NB201_SIZE: usize = 15_625;

/// Environment variable naming the table when no explicit path is given.
pub const ENV_VAR: &str = "WGNAS_NB201";

/// Column holding the architecture string.
const ARCH_COLUMN: &str = "ArchitectureString";
/// Column holding the isomorphism-canonical string.
const UNIQUE_COLUMN: &str = "UniqueString";

/// A dataset of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Dataset {
    /// CIFAR-10.
    Cifar10,
    /// CIFAR-100.
    Cifar100,
    /// ImageNet16-120 (ImageNet downsampled to 16×16, 120 classes).
    ImageNet16_120,
}

impl Dataset {
    /// All datasets, in the table's column order.
    pub const ALL: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

    /// Display name, e.g. `CIFAR-10`.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "CIFAR-10",
            Dataset::Cifar100 => "CIFAR-100",
            Dataset::ImageNet16_120 => "ImageNet16-120",
        }
    }

    /// The table column holding this dataset's test accuracy (%).
    pub fn column(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "CIFAR10TestAccuracy200Epochs",
            Dataset::Cifar100 => "CIFAR100TestAccuracy200Epochs",
            Dataset::ImageNet16_120 => "ImageNetTestAccuracy200Epochs",
        }
    }

    /// Position in [`Dataset::ALL`].
    fn slot(self) -> usize {
        self as usize
    }
}

/// One architecture's standing on one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// Test accuracy in percent.
    pub accuracy: f64,
    /// 1 + the number of architectures with strictly higher accuracy (1 = best; ties share the better rank).
    pub rank: usize,
    /// 100 · (architectures with strictly lower accuracy) / (table size): 0 for the worst, near 100 for the best.
    pub percentile: f64,
}

/// Everything the table says about one architecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bench201Record {
    /// Benchmark index (data row of the table, 0-based).
    pub index: usize,
    /// The architecture.
    pub arch: Nb201Arch,
    /// Isomorphism-canonical form: architectures computing the same function share it.
    pub unique: String,
    /// Number of architectures in the table (ranks are out of this).
    pub total: usize,
    /// Standing on CIFAR-10.
    pub cifar10: Score,
    /// Standing on CIFAR-100.
    pub cifar100: Score,
    /// Standing on ImageNet16-120.
    pub imagenet16_120: Score,
}

impl Bench201Record {
    /// The standing on `dataset`.
    pub fn score(&self, dataset: Dataset) -> Score {
        match dataset {
            Dataset::Cifar10 => self.cifar10,
            Dataset::Cifar100 => self.cifar100,
            Dataset::ImageNet16_120 => self.imagenet16_120,
        }
    }
}

/// Per-dataset columns, with ranks precomputed at load time.
#[derive(Debug, Clone, Default)]
struct Column {
    accuracy: Vec<f64>,
    rank: Vec<u32>,
    below: Vec<u32>,
}

/// The loaded table with an O(1) architecture → index map.
#[derive(Debug, Clone)]
pub struct Bench201 {
    source: PathBuf,
    archs: Vec<Nb201Arch>,
    unique: Vec<String>,
    columns: [Column; 3],
    by_arch: HashMap<Nb201Arch, usize>,
}

impl Bench201 {
    /// Loads the table from `explicit`, else from `$WGNAS_NB201`.
    pub fn open(explicit: Option<&Path>) -> Result<Self> {
        Self::load(&Self::locate(explicit)?)
    }

    /// The table's path: `explicit` if given, else `$WGNAS_NB201`, else an error saying how to give one.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
        resolve_path(explicit, std::env::var_os(ENV_VAR))
    }

    /// Loads the full table from `path`; it must hold exactly [`NB201_SIZE`] rows.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_rows(path, Some(NB201_SIZE))
    }

    /// Loads a table from `path` with `expected_rows` data rows (`None` accepts any non-zero count).
    pub fn load_rows(path: &Path, expected_rows: Option<usize>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::from_csv(&text, path, expected_rows)
    }

    /// Parses CSV `text`; `source` names it in errors, which give the line number.
    pub fn from_csv(text: &str, source: &Path, expected_rows: Option<usize>) -> Result<Self> {
        Loader::new(source, expected_rows).run(text)
    }

    /// The file the table came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Number of architectures.
    pub fn len(&self) -> usize {
        self.archs.len()
    }

    /// Whether the table is empty (never true for a loaded table).
    pub fn is_empty(&self) -> bool {
        self.archs.is_empty()
    }

    /// All architectures, by benchmark index.
    pub fn archs(&self) -> &[Nb201Arch] {
        &self.archs
    }

    /// Benchmark index of `arch`, if the table holds it.
    pub fn index_of(&self, arch: &Nb201Arch) -> Option<usize> {
        self.by_arch.get(arch).copied()
    }

    /// Test accuracy (%) of benchmark index `index` on `dataset`.
    pub fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64> {
        self.columns[dataset.slot()].accuracy.get(index).copied()
    }

    /// Everything about benchmark index `index`.
    pub fn record(&self, index: usize) -> Option<Bench201Record> {
        let arch = *self.archs.get(index)?;
        Some(Bench201Record {
            index,
            arch,
            unique: self.unique[index].clone(),
            total: self.len(),
            cifar10: self.score(index, Dataset::Cifar10),
            cifar100: self.score(index, Dataset::Cifar100),
            imagenet16_120: self.score(index, Dataset::ImageNet16_120),
        })
    }

    /// Everything about `arch`, if the table holds it.
    pub fn query(&self, arch: &Nb201Arch) -> Option<Bench201Record> {
        self.record(self.index_of(arch)?)
    }

    /// Everything about the architecture string `arch`; a malformed string gives the parse error.
    pub fn query_str(&self, arch: &str) -> Result<Bench201Record> {
        let parsed = Nb201Arch::parse(arch)?;
        self.query(&parsed).ok_or_else(|| {
            let msg = format!("{parsed} is not in {} ({} architectures)", self.source.display(), self.len());
            Error::invalid("nb201 query", msg)
        })
    }

    /// The best architecture on `dataset` (the lowest index among ties).
    pub fn best(&self, dataset: Dataset) -> Option<Bench201Record> {
        let rank = &self.columns[dataset.slot()].rank;
        self.record(rank.iter().position(|&r| r == 1)?)
    }

    /// Score of row `index` (which must exist) on `dataset`.
    fn score(&self, index: usize, dataset: Dataset) -> Score {
        let c = &self.columns[dataset.slot()];
        Score {
            accuracy: c.accuracy[index],
            rank: c.rank[index] as usize,
            percentile: 100.0 * c.below[index] as f64 / self.len() as f64,
        }
    }
}

/// `explicit`, else the environment's value (`env`, ignored when empty), else an error.
fn resolve_path(explicit: Option<&Path>, env: Option<OsString>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    match env {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(Error::invalid(
            "nb201",
            format!("no NAS-Bench-201 table given: pass --nb201 PATH or set {ENV_VAR} (a CSV such as nb201_test_acc_200ep.csv)"),
        )),
    }
}

/// Competition ranks (1 = highest; ties share the better rank) and the number of
/// strictly lower values, for every element of `values`.
fn rank_descending(values: &[f64]) -> (Vec<u32>, Vec<u32>) {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let (mut rank, mut below) = (vec![0u32; n], vec![0u32; n]);
    let mut start = 0;
    while start < n {
        let v = values[order[start]];
        let end = start + order[start..].iter().take_while(|&&i| values[i] == v).count();
        for &i in &order[start..end] {
            rank[i] = (start + 1) as u32;
            below[i] = (n - end) as u32;
        }
        start = end;
    }
    (rank, below)
}

/// Column positions found in the header.
struct Layout {
    fields: usize,
    accuracy: [usize; 3],
    arch: usize,
    unique: usize,
}

/// The CSV reader: one pass over the lines, each error naming file and line.
struct Loader<'a> {
    source: &'a Path,
    expected_rows: Option<usize>,
    archs: Vec<Nb201Arch>,
    unique: Vec<String>,
    accuracy: [Vec<f64>; 3],
    by_arch: HashMap<Nb201Arch, usize>,
}

impl<'a> Loader<'a> {
    fn new(source: &'a Path, expected_rows: Option<usize>) -> Self {
        let cap = expected_rows.unwrap_or(0);
        Loader {
            source,
            expected_rows,
            archs: Vec::with_capacity(cap),
            unique: Vec::with_capacity(cap),
            accuracy: Default::default(),
            by_arch: HashMap::with_capacity(cap),
        }
    }

    /// A format error at 1-based `line`.
    fn error(&self, line: usize, msg: impl std::fmt::Display) -> Error {
        Error::Format { path: self.source.to_path_buf(), message: format!("line {line}: {msg}") }
    }

    fn run(mut self, text: &str) -> Result<Bench201> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let layout = match lines.next() {
            Some((n, header)) => self.header(n, header.trim_start_matches('\u{feff}'))?,
            None => return Err(self.error(1, "the file is empty; expected a header line")),
        };
        let mut blank: Option<usize> = None;
        let mut last_line = 1;
        for (n, line) in lines {
            if line.trim().is_empty() {
                blank = blank.or(Some(n));
                continue;
            }
            if let Some(b) = blank {
                return Err(self.error(b, "empty line inside the table"));
            }
            self.row(n, line, &layout)?;
            last_line = n;
        }
        self.check_count(last_line)?;
        Ok(self.finish())
    }

    /// Finds the needed columns, listing every missing one.
    fn header(&self, n: usize, header: &str) -> Result<Layout> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let find = |c: &str| names.iter().position(|&h| h == c);
        let wanted = Dataset::ALL.map(Dataset::column);
        let missing: Vec<&str> =
            wanted.iter().copied().chain([ARCH_COLUMN, UNIQUE_COLUMN]).filter(|c| find(c).is_none()).collect();
        if !missing.is_empty() {
            let msg = format!("missing column(s) {}; the header has: {}", missing.join(", "), names.join(", "));
            return Err(self.error(n, msg));
        }
        Ok(Layout {
            fields: names.len(),
            accuracy: wanted.map(|c| find(c).unwrap_or(0)),
            arch: find(ARCH_COLUMN).unwrap_or(0),
            unique: find(UNIQUE_COLUMN).unwrap_or(0),
        })
    }

    /// Parses data line `n` (1-based) into the next row.
    fn row(&mut self, n: usize, line: &str, layout: &Layout) -> Result<()> {
        let index = self.archs.len();
        if self.expected_rows.is_some_and(|e| index >= e) {
            return Err(self.error(n, format!("more data rows than the {index} expected")));
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != layout.fields {
            return Err(self.error(n, format!("expected {} fields, found {}", layout.fields, fields.len())));
        }
        let mut acc = [0.0; 3];
        for (d, a) in Dataset::ALL.into_iter().zip(&mut acc) {
            *a = self.accuracy_field(n, d.column(), fields[layout.accuracy[d.slot()]])?;
        }
        let arch = Nb201Arch::parse(fields[layout.arch]).map_err(|e| self.error(n, format!("{ARCH_COLUMN}: {e}")))?;
        if let Some(prev) = self.by_arch.insert(arch, index) {
            return Err(self.error(n, format!("architecture {arch} repeats line {}", prev + 2)));
        }
        self.archs.push(arch);
        self.unique.push(fields[layout.unique].to_string());
        for (col, a) in self.accuracy.iter_mut().zip(acc) {
            col.push(a);
        }
        Ok(())
    }

    /// An accuracy in percent: a finite number in 0..=100.
    fn accuracy_field(&self, n: usize, column: &str, field: &str) -> Result<f64> {
        match field.parse::<f64>() {
            Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
            Ok(v) => Err(self.error(n, format!("{column} = {v} is not an accuracy in 0..100 %"))),
            Err(_) => Err(self.error(n, format!("{column} = '{field}' is not a number"))),
        }
    }

    /// Checks the number of data rows read, ending at `last_line`.
    fn check_count(&self, last_line: usize) -> Result<()> {
        let rows = self.archs.len();
        if rows == 0 {
            return Err(self.error(last_line, "no data rows after the header"));
        }
        match self.expected_rows {
            Some(e) if rows < e => Err(self.error(
                last_line,
                format!("the table ends after {rows} data rows, expected {e} (is the file truncated?)"),
            )),
            _ => Ok(()),
        }
    }

    fn finish(self) -> Bench201 {
        let columns = self.accuracy.map(|accuracy| {
            let (rank, below) = rank_descending(&accuracy);
            Column { accuracy, rank, below }
        });
        Bench201 {
            source: self.source.to_path_buf(),
            archs: self.archs,
            unique: self.unique,
            columns,
            by_arch: self.by_arch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn competition_ranks_share_the_better_rank() {
        let (rank, below) = rank_descending(&[50.0, 90.0, 50.0, 10.0, 90.0, 70.0]);
        assert_eq!(rank, [4, 1, 4, 6, 1, 3]);
        // below = how many are strictly lower: 70 beats 50, 50 and 10.
        assert_eq!(below, [1, 4, 1, 0, 4, 3]);
    }

    #[test]
    fn path_comes_from_the_flag_then_the_environment() {
        let flag = Path::new("/a.csv");
        assert_eq!(resolve_path(Some(flag), Some("/b.csv".into())).unwrap(), flag);
        assert_eq!(resolve_path(None, Some("/b.csv".into())).unwrap(), Path::new("/b.csv"));
        for env in [None, Some(OsString::new())] {
            let e = resolve_path(None, env).unwrap_err().to_string();
            assert!(e.contains("pass --nb201 PATH or set WGNAS_NB201"), "{e}");
        }
    }
}
