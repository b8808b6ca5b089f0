//! Train/validation splits of a training set: by a fraction with a seeded shuffle,
//! or from a JSON index file. DARTS-style searches train the weights on `train`
//! and the architecture on `valid`.

use std::path::Path;

use serde_json::Value;

use super::{format_err, read_file};
use crate::error::{Error, Result};
use crate::util::rng::Rng;

/// Two disjoint lists of image indices, each sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Indices that train the weights.
    pub train: Vec<usize>,
    /// Indices held out for validation (architecture updates in a search).
    pub valid: Vec<usize>,
}

impl Split {
    /// Shuffles `0..n` with `Rng::new(seed)` and puts the first
    /// `round(n · train_fraction)` indices in `train`, the rest in `valid`.
    /// The same `(n, fraction, seed)` always gives the same split.
    pub fn by_fraction(n: usize, train_fraction: f64, seed: u64) -> Result<Split> {
        if !(0.0..=1.0).contains(&train_fraction) {
            return Err(Error::invalid("split", format!("train fraction {train_fraction} is not in [0, 1]")));
        }
        if n == 0 {
            return Err(Error::invalid("split", "cannot split an empty dataset"));
        }
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(seed).shuffle(&mut order);
        let cut = ((n as f64) * train_fraction).round() as usize;
        let (mut train, mut valid) = (order[..cut].to_vec(), order[cut..].to_vec());
        train.sort_unstable();
        valid.sort_unstable();
        Ok(Split { train, valid })
    }

    /// Reads a split from a JSON file (see [`Split::from_json`]).
    pub fn from_file(path: &Path, n: usize) -> Result<Split> {
        let bytes = read_file(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| format_err(path, format!("not UTF-8: {e}")))?;
        Self::from_json(text, path, n)
    }

    /// Parses `{"train": [...], "valid": [...]}` with integer indices, or the
    /// NAS-Bench-201 `cifar-split.json` form `{"train": ["int", ["0", "5", ...]], ...}`.
    /// Every index must be below `n`, and no index may repeat (within or across
    /// the lists). `path` names the source in errors.
    pub fn from_json(text: &str, path: &Path, n: usize) -> Result<Split> {
        let root: Value = serde_json::from_str(text).map_err(|e| format_err(path, format!("invalid JSON: {e}")))?;
        let train = indices(root.get("train"), "train", path, n)?;
        let valid = indices(root.get("valid"), "valid", path, n)?;
        let mut split = Split { train, valid };
        split.train.sort_unstable();
        split.valid.sort_unstable();
        check_disjoint(&split, path, n)?;
        Ok(split)
    }

    /// Number of indices in both parts.
    pub fn len(&self) -> usize {
        self.train.len() + self.valid.len()
    }

    /// True when both parts are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The indices under one key: a plain array of integers, or `["int", [strings]]`.
fn indices(value: Option<&Value>, key: &str, path: &Path, n: usize) -> Result<Vec<usize>> {
    let value = value.ok_or_else(|| format_err(path, format!("no \"{key}\" list")))?;
    let items = match value.as_array().map(Vec::as_slice) {
        Some([Value::String(tag), Value::Array(items)]) if tag == "int" => items,
        Some(items) => items,
        None => return Err(format_err(path, format!("\"{key}\" is not a list"))),
    };
    items
        .iter()
        .map(|v| {
            let i = match v {
                Value::Number(x) => x.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            let i = i.ok_or_else(|| format_err(path, format!("\"{key}\" holds {v}, not an index")))?;
            if i >= n as u64 {
                return Err(format_err(path, format!("\"{key}\" index {i} is out of range for {n} images")));
            }
            Ok(i as usize)
        })
        .collect()
}

/// Errors when an index appears twice, within a list or in both (inputs sorted).
fn check_disjoint(split: &Split, path: &Path, n: usize) -> Result<()> {
    let mut seen = vec![false; n];
    for (key, list) in [("train", &split.train), ("valid", &split.valid)] {
        for &i in list {
            if std::mem::replace(&mut seen[i], true) {
                return Err(format_err(path, format!("index {i} appears twice (last in \"{key}\")")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_split_is_deterministic_and_disjoint() {
        let a = Split::by_fraction(101, 0.5, 7).unwrap();
        assert_eq!(a, Split::by_fraction(101, 0.5, 7).unwrap());
        assert_ne!(a, Split::by_fraction(101, 0.5, 8).unwrap());
        assert_eq!((a.train.len(), a.valid.len()), (51, 50));
        let mut all = [a.train.clone(), a.valid.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..101).collect::<Vec<_>>());
        assert!(Split::by_fraction(10, 1.5, 0).is_err());
        assert!(Split::by_fraction(0, 0.5, 0).is_err());
        assert_eq!(Split::by_fraction(10, 1.0, 0).unwrap().valid.len(), 0);
    }

    #[test]
    fn json_forms() {
        let p = Path::new("split.json");
        let plain = Split::from_json(r#"{"train": [3, 0], "valid": [1]}"#, p, 4).unwrap();
        assert_eq!(plain, Split { train: vec![0, 3], valid: vec![1] });
        let nb201 = Split::from_json(r#"{"train": ["int", ["3", "0"]], "valid": ["int", ["1"]]}"#, p, 4).unwrap();
        assert_eq!(plain, nb201);
        for bad in [
            r#"{"train": [4], "valid": []}"#,
            r#"{"train": [0], "valid": [0]}"#,
            r#"{"train": [-1], "valid": []}"#,
            r#"{"train": [0]}"#,
            r#"{"train": "x", "valid": []}"#,
            r#"not json"#,
        ] {
            let e = Split::from_json(bad, p, 4).unwrap_err().to_string();
            assert!(e.contains("split.json"), "{bad}: {e}");
        }
    }
}
