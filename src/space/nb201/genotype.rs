//! NAS-Bench-201 genotypes: the op vocabulary, the edge order, and the
//! architecture string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` (node 1's inputs,
//! then node 2's, then node 3's), with precise parse errors and derivation from α.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Number of candidate ops per edge.
pub const NUM_OPS: usize = 5;
/// Number of nodes in a cell (node 0 is the input, node 3 the output).
pub const NUM_NODES: usize = 4;
/// Number of edges in a cell.
pub const NUM_EDGES: usize = 6;
/// Length of the row-major α matrix, `[NUM_EDGES, NUM_OPS]`.
pub const ALPHA_LEN: usize = NUM_EDGES * NUM_OPS;

/// The edges as `(to, from)`, in the order of α's rows and of the string form:
/// `1←0, 2←0, 2←1, 3←0, 3←1, 3←2`.
pub const EDGES: [(usize, usize); NUM_EDGES] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// The string form, quoted in parse errors.
const FORM: &str = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|";

/// Component name in errors.
const WHAT: &str = "nb201 architecture";

/// One candidate op of an NB201 edge. The discriminant is the op's index in α's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Nb201Op {
    /// Zero: the edge is absent.
    #[serde(rename = "none")]
    None = 0,
    /// Identity.
    #[serde(rename = "skip_connect")]
    SkipConnect = 1,
    /// ReLU → Conv 1×1 → BN.
    #[serde(rename = "nor_conv_1x1")]
    NorConv1x1 = 2,
    /// ReLU → Conv 3×3 (padding 1) → BN.
    #[serde(rename = "nor_conv_3x3")]
    NorConv3x3 = 3,
    /// Average pool 3×3, stride 1, padding 1, padding excluded from the divisor.
    #[serde(rename = "avg_pool_3x3")]
    AvgPool3x3 = 4,
}

impl Nb201Op {
    /// All ops in index order.
    pub const ALL: [Nb201Op; NUM_OPS] =
        [Nb201Op::None, Nb201Op::SkipConnect, Nb201Op::NorConv1x1, Nb201Op::NorConv3x3, Nb201Op::AvgPool3x3];

    /// The op's name in architecture strings, e.g. `nor_conv_3x3`.
    pub fn name(self) -> &'static str {
        match self {
            Nb201Op::None => "none",
            Nb201Op::SkipConnect => "skip_connect",
            Nb201Op::NorConv1x1 => "nor_conv_1x1",
            Nb201Op::NorConv3x3 => "nor_conv_3x3",
            Nb201Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// The op with this exact name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The op's column in α (0..5).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The op at column `index` of α, if `index < 5`.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    /// Whether the op holds a convolution (the model-size measure of MiLeNAS).
    pub fn is_conv(self) -> bool {
        matches!(self, Nb201Op::NorConv1x1 | Nb201Op::NorConv3x3)
    }

    /// The valid names, comma-separated, for error messages.
    pub fn valid_names() -> String {
        Self::ALL.map(Nb201Op::name).join(", ")
    }
}

impl fmt::Display for Nb201Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Nb201Op {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s).ok_or_else(|| {
            Error::invalid("nb201 op", format!("unknown op '{s}'; valid ops are {}", Self::valid_names()))
        })
    }
}

/// A discrete NB201 cell: one op per edge, in [`EDGES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nb201Arch {
    /// `ops[e]` is the op on edge `EDGES[e]`.
    pub ops: [Nb201Op; NUM_EDGES],
}

impl Nb201Arch {
    /// Parses `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` (surrounding whitespace is ignored).
    /// Errors say which node group and which input is wrong, and what was expected.
    pub fn parse(s: &str) -> Result<Self> {
        let text = s.trim();
        if text.is_empty() {
            return Err(Error::invalid(WHAT, format!("empty string; expected the form {FORM}")));
        }
        let groups: Vec<&str> = text.split('+').collect();
        if groups.len() != NUM_NODES - 1 {
            let msg = format!(
                "expected 3 node groups (nodes 1, 2, 3) separated by '+', found {}; the form is {FORM}",
                groups.len()
            );
            return Err(parse_error(text, msg));
        }
        let mut ops = [Nb201Op::None; NUM_EDGES];
        let mut edge = 0;
        for (g, group) in groups.iter().enumerate() {
            let node = g + 1;
            for (pos, entry) in group_entries(text, node, group)?.iter().enumerate() {
                ops[edge] = parse_entry(text, node, pos, entry)?;
                edge += 1;
            }
        }
        Ok(Nb201Arch { ops })
    }

    /// Per-edge argmax of α (`[6 edges, 5 ops]`, row-major) over `allowed_ops`, `none`
    /// included if allowed; ties go to the lowest op index.
    pub fn from_alpha(alpha: &[f32], allowed_ops: &[Nb201Op]) -> Result<Self> {
        const OP: &str = "nb201 from_alpha";
        if alpha.len() != ALPHA_LEN {
            let msg = format!("α has {} values, expected {NUM_EDGES} edges × {NUM_OPS} ops = {ALPHA_LEN}", alpha.len());
            return Err(Error::shape(OP, msg));
        }
        if let Some(i) = alpha.iter().position(|v| !v.is_finite()) {
            let (e, o) = (i / NUM_OPS, i % NUM_OPS);
            return Err(Error::invalid(OP, format!("α[edge {e}, op {o}] = {} is not finite", alpha[i])));
        }
        let mut ops = [Nb201Op::None; NUM_EDGES];
        for (e, row) in alpha.chunks_exact(NUM_OPS).enumerate() {
            // Scanning in index order with a strict `>` is what sends ties to the lowest index.
            let mut best: Option<Nb201Op> = None;
            for op in Nb201Op::ALL.into_iter().filter(|op| allowed_ops.contains(op)) {
                if best.is_none_or(|b| row[op.index()] > row[b.index()]) {
                    best = Some(op);
                }
            }
            let Some(op) = best else {
                return Err(Error::invalid(OP, "allowed_ops is empty: no op to choose on any edge"));
            };
            ops[e] = op;
        }
        Ok(Nb201Arch { ops })
    }

    /// Number of convolution ops in the cell (MiLeNAS's model-size measure).
    pub fn conv_count(&self) -> usize {
        self.ops.iter().filter(|op| op.is_conv()).count()
    }

    /// The edges as `(to, from, op)`, in [`EDGES`] order.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize, Nb201Op)> + '_ {
        EDGES.iter().zip(self.ops).map(|(&(to, from), op)| (to, from, op))
    }

    /// The op on edge `to ← from`, if that edge exists.
    pub fn op(&self, to: usize, from: usize) -> Option<Nb201Op> {
        EDGES.iter().position(|&e| e == (to, from)).map(|e| self.ops[e])
    }
}

/// An error about the architecture string `text`.
fn parse_error(text: &str, msg: impl fmt::Display) -> Error {
    Error::invalid(WHAT, format!("'{text}': {msg}"))
}

/// The `op~j` entries of node `node`'s group `|a~0|b~1|`, checked for bars and count.
fn group_entries<'a>(text: &str, node: usize, group: &'a str) -> Result<Vec<&'a str>> {
    let expected = (0..node).map(|j| format!("op~{j}|")).collect::<String>();
    let at = |msg: String| parse_error(text, format!("node {node} group '{group}': {msg}"));
    if group.is_empty() {
        return Err(parse_error(text, format!("node {node} group is empty; expected |{expected}")));
    }
    if !group.starts_with('|') {
        return Err(at("missing the opening '|'".into()));
    }
    if group.len() < 2 || !group.ends_with('|') {
        return Err(at("missing the closing '|'".into()));
    }
    let inner = &group[1..group.len() - 1];
    let entries: Vec<&str> = if inner.is_empty() { Vec::new() } else { inner.split('|').collect() };
    if entries.len() != node {
        let msg = format!("has {} inputs, expected {node} (|{expected})", entries.len());
        return Err(at(msg));
    }
    Ok(entries)
}

/// Parses entry `pos` of node `node`'s group, which must read `op~pos`.
fn parse_entry(text: &str, node: usize, pos: usize, entry: &str) -> Result<Nb201Op> {
    let at = |msg: String| parse_error(text, format!("node {node}, input {} of {node} ('{entry}'): {msg}", pos + 1));
    if entry.is_empty() {
        return Err(at(format!("empty input (two '|' in a row?); expected op~{pos}")));
    }
    let Some((name, source)) = entry.split_once('~') else {
        return Err(at(format!("missing the source index; expected '{entry}~{pos}'")));
    };
    if name.is_empty() {
        return Err(at(format!("missing the op name before '~{source}'")));
    }
    let Some(op) = Nb201Op::from_name(name) else {
        return Err(at(format!("unknown op '{name}'; valid ops are {}", Nb201Op::valid_names())));
    };
    match source.parse::<usize>() {
        Ok(j) if j == pos => Ok(op),
        Ok(j) => Err(at(format!(
            "wrong source index ~{j} where ~{pos} was expected (node {node} lists its inputs in order ~0..~{})",
            node - 1
        ))),
        Err(_) => Err(at(format!("source index '~{source}' is not a node number; expected ~{pos}"))),
    }
}

impl fmt::Display for Nb201Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (e, (_, from, op)) in self.edges().enumerate() {
            if from == 0 {
                f.write_str(if e == 0 { "|" } else { "+|" })?;
            }
            write!(f, "{op}~{from}|")?;
        }
        Ok(())
    }
}

impl FromStr for Nb201Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Serialized as its string form, the way genotypes are stored and exchanged.
impl Serialize for Nb201Arch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Nb201Arch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Nb201Arch::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Not a glob import: `Nb201Op::None` would shadow `Option::None`.
    use Nb201Op::{AvgPool3x3, NorConv1x1, NorConv3x3, SkipConnect};

    const BEST: &str =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

    fn err(s: &str) -> String {
        match Nb201Arch::parse(s) {
            Ok(a) => panic!("'{s}' parsed as {a}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn names_and_indices_round_trip() {
        for (i, op) in Nb201Op::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(Nb201Op::from_index(i), Some(op));
            assert_eq!(Nb201Op::from_name(op.name()), Some(op));
        }
        assert_eq!(Nb201Op::from_index(5), None);
        assert_eq!(Nb201Op::from_name("conv_3x3"), None);
        assert_eq!(Nb201Op::valid_names(), "none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3");
    }

    #[test]
    fn parses_and_formats_the_best_cell() {
        let a = Nb201Arch::parse(BEST).unwrap();
        assert_eq!(a.ops, [NorConv3x3, NorConv3x3, NorConv3x3, SkipConnect, NorConv3x3, NorConv1x1]);
        assert_eq!(a.to_string(), BEST);
        assert_eq!(a.conv_count(), 5);
        assert_eq!(a.op(3, 2), Some(NorConv1x1));
        assert_eq!(a.op(1, 2), None);
        assert_eq!(Nb201Arch::parse(&format!("  {BEST}\n")).unwrap(), a);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let a = Nb201Arch::parse(BEST).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{BEST}\""));
        assert_eq!(serde_json::from_str::<Nb201Arch>(&json).unwrap(), a);
        assert!(serde_json::from_str::<Nb201Arch>("\"|none~0|\"").is_err());
        assert_eq!(serde_json::to_string(&NorConv1x1).unwrap(), "\"nor_conv_1x1\"");
    }

    #[test]
    fn errors_say_where_and_what() {
        assert!(err("").contains("empty string"));
        assert!(err("|none~0|+|none~0|none~1|").contains("expected 3 node groups"));
        assert!(err("|none~0|+|none~0|none~1|").contains("found 2"));
        let e = err("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|");
        assert!(e.contains("node 2, input 2 of 2") && e.contains("wrong source index ~2 where ~1 was expected"), "{e}");
        let e = err("|none~0|+|none~0|conv_5x5~1|+|none~0|none~1|none~2|");
        assert!(e.contains("unknown op 'conv_5x5'") && e.contains(&Nb201Op::valid_names()), "{e}");
        let e = err("none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        assert!(e.contains("node 1 group") && e.contains("opening '|'"), "{e}");
        let e = err("|none~0|+|none~0|none~1|+|none~0|none~1|none~2");
        assert!(e.contains("node 3 group") && e.contains("closing '|'"), "{e}");
    }

    #[test]
    fn from_alpha_takes_the_argmax_with_ties_to_the_lowest_index() {
        let mut alpha = [0.0f32; ALPHA_LEN];
        alpha[3] = 1.0; // edge 0 → nor_conv_3x3
        alpha[NUM_OPS + 1] = 0.5; // edge 1 → skip (edge 1 also ties 0.5 at avg_pool below)
        alpha[NUM_OPS + 4] = 0.5;
        // edges 2..5 are all zero: a five-way tie, so `none`.
        let a = Nb201Arch::from_alpha(&alpha, &Nb201Op::ALL).unwrap();
        assert_eq!(a.ops, [NorConv3x3, SkipConnect, Nb201Op::None, Nb201Op::None, Nb201Op::None, Nb201Op::None]);
        // Without `none`, the all-zero edges fall to the next lowest index.
        let a = Nb201Arch::from_alpha(&alpha, &[AvgPool3x3, SkipConnect, NorConv3x3]).unwrap();
        assert_eq!(a.ops, [NorConv3x3, SkipConnect, SkipConnect, SkipConnect, SkipConnect, SkipConnect]);
    }

    #[test]
    fn from_alpha_rejects_bad_input() {
        assert!(Nb201Arch::from_alpha(&[0.0; 29], &Nb201Op::ALL).unwrap_err().to_string().contains("29 values"));
        assert!(Nb201Arch::from_alpha(&[0.0; 30], &[]).unwrap_err().to_string().contains("empty"));
        let mut a = [0.0f32; 30];
        a[7] = f32::NAN;
        assert!(Nb201Arch::from_alpha(&a, &Nb201Op::ALL).unwrap_err().to_string().contains("α[edge 1, op 2]"));
    }
}
