//! Routing plans: for every query `i`, its **direct set** Ω_i^0 and its **abstraction regions**
//! Ω_i^1 … Ω_i^{n_i} (Combiner §3.1, eq. 4–8). A plan is plain data; one plan drives the
//! plan-based reference, the routing API and the fast executor.
//!
//! Every region has a stable `id` within its [`Layout`]: two queries that use the same region
//! get the same id, so the executor computes each region summary (summary key, summary value)
//! once and shares it.
//!
//! # References
//! Ren et al., "Combiner: Full Attention Transformer with Sparse Computation Cost",
//! NeurIPS 2021 (arXiv 2107.05768), §3–4; attnscope `combiner.md` §0, §3, §7.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{axial, fixed, logsparse, mixture};
use crate::attention::AttentionError;

/// The four Combiner variants of attnscope (`combiner.md` §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Combiner-Fixed (§3.1): own block direct, every other block one region.
    Fixed,
    /// Combiner-Logsparse (§3.2): dyadic blocks given by the binary digits of `i`.
    Logsparse,
    /// Combiner-Axial, rowmajor plan (§3.3a): own row direct, one abstraction per other row.
    Axial,
    /// Combiner-Mixture (§3.4a): axial-vertical and axial-horizontal plans in one softmax.
    Mixture,
}

impl Variant {
    /// Every variant, in display order.
    pub const ALL: &'static [Variant] = &[
        Variant::Fixed,
        Variant::Logsparse,
        Variant::Axial,
        Variant::Mixture,
    ];

    /// The method id (`combiner-fixed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Fixed => "combiner-fixed",
            Variant::Logsparse => "combiner-logsparse",
            Variant::Axial => "combiner-axial",
            Variant::Mixture => "combiner-mixture",
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of key positions `start, start + step, …` (`len` of them): a contiguous key range
/// (`step = 1`) or a column of the axial grid (`step = m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeySet {
    /// First key position.
    pub start: usize,
    /// Distance between consecutive keys (≥ 1).
    pub step: usize,
    /// Number of keys.
    pub len: usize,
}

impl KeySet {
    /// The contiguous key range `range`.
    pub fn range(range: Range<usize>) -> Self {
        Self {
            start: range.start,
            step: 1,
            len: range.end.saturating_sub(range.start),
        }
    }

    /// `len` keys `start, start + step, …`.
    pub fn strided(start: usize, step: usize, len: usize) -> Self {
        Self {
            start,
            step: step.max(1),
            len,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key positions in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (start, step) = (self.start, self.step);
        (0..self.len).map(move |t| start + t * step)
    }

    /// The keys as a `Vec`.
    pub fn to_vec(&self) -> Vec<usize> {
        self.iter().collect()
    }

    /// Whether key `j` is in the set.
    pub fn contains(&self, j: usize) -> bool {
        j >= self.start
            && (j - self.start).is_multiple_of(self.step)
            && (j - self.start) / self.step < self.len
    }

    /// The contiguous range, when `step = 1` (or the set has at most one key).
    pub fn as_range(&self) -> Option<Range<usize>> {
        (self.step == 1 || self.len <= 1).then(|| self.start..self.start + self.len)
    }
}

impl std::fmt::Display for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.len, self.as_range()) {
            (0, _) => f.write_str("∅"),
            (1, _) => write!(f, "{{{}}}", self.start),
            (_, Some(r)) => write!(f, "[{}..{}]", r.start, r.end - 1),
            _ => {
                let last = self.start + (self.len - 1) * self.step;
                write!(
                    f,
                    "{{{}, {}, …, {}}} (step {})",
                    self.start,
                    self.start + self.step,
                    last,
                    self.step
                )
            }
        }
    }
}

/// Which abstraction a region is (for labels in the routing view); grid coordinates are
/// `(row, column)` of the row-major grid of width `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegionKind {
    /// Fixed: the whole block `block` (keys `[block·s, (block+1)·s) ∩ [0, L)`).
    Block {
        /// Block index.
        block: usize,
    },
    /// Logsparse: dyadic block `block` of size `2^level`.
    Dyadic {
        /// Level l ≥ 1 (block size 2^l).
        level: u32,
        /// Block index at that level.
        block: usize,
    },
    /// Axial rowmajor: a whole grid row.
    Row {
        /// Grid row.
        row: usize,
    },
    /// Mixture: column `column` in rows `0..rows` (vertical, part above the query).
    ColumnAbove {
        /// Grid column.
        column: usize,
        /// Rows `0..rows`.
        rows: usize,
    },
    /// Mixture (bidirectional): column `column` in rows `from_row..` (part below the query).
    ColumnBelow {
        /// Grid column.
        column: usize,
        /// First row.
        from_row: usize,
    },
    /// Mixture: row `row` in columns `0..columns` (horizontal, part left of the query column).
    RowLeft {
        /// Grid row.
        row: usize,
        /// Columns `0..columns`.
        columns: usize,
    },
    /// Mixture: row `row` in columns `from_column..` (part right of the query column).
    RowRight {
        /// Grid row.
        row: usize,
        /// First column.
        from_column: usize,
    },
}

impl std::fmt::Display for RegionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            RegionKind::Block { block } => write!(f, "block {block}"),
            RegionKind::Dyadic { level, block } => write!(f, "level {level} block {block}"),
            RegionKind::Row { row } => write!(f, "row {row}"),
            RegionKind::ColumnAbove { column, rows } => write!(f, "column {column}, rows < {rows}"),
            RegionKind::ColumnBelow { column, from_row } => {
                write!(f, "column {column}, rows ≥ {from_row}")
            }
            RegionKind::RowLeft { row, columns } => write!(f, "row {row}, columns < {columns}"),
            RegionKind::RowRight { row, from_column } => {
                write!(f, "row {row}, columns ≥ {from_column}")
            }
        }
    }
}

/// How a region's summary query and summary key are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SummarySource {
    /// Summary query = pooling (max or mean) of the region's scaled queries; summary key =
    /// pooling of its raw keys (eq. 9, `combiner.md` §4).
    Pooled,
    /// Axial rowmajor (§3.3a): summary query = the scaled query at this position (the query
    /// in the same column as the attending query); summary key from the `key_row` rule.
    Position(usize),
}

/// One abstraction region Ω_i^r of a query plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region {
    /// Stable id within the [`Layout`] (`0..layout.region_count()`); shared regions share ids.
    pub id: usize,
    /// Which abstraction this is.
    pub kind: RegionKind,
    /// The region's keys.
    pub keys: KeySet,
    /// How the summary query and key are formed.
    pub summary: SummarySource,
}

/// The routing plan of one query: direct keys and abstraction regions. They are disjoint for
/// Fixed, Logsparse and Axial; in Mixture a key can be in two regions (two routes, §3.4a).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryPlan {
    /// The query position `i`.
    pub query: usize,
    /// Direct keys Ω_i^0, increasing.
    pub direct: Vec<usize>,
    /// Abstraction regions Ω_i^1 … (one joint-softmax entry each).
    pub regions: Vec<Region>,
}

impl QueryPlan {
    /// Number of joint-softmax entries (logits) of this query: `|Ω_i^0| + n_i`.
    pub fn terms(&self) -> usize {
        self.direct.len() + self.regions.len()
    }

    /// Resets the plan to query `i` with no keys (keeps the allocations).
    pub fn reset(&mut self, i: usize) {
        self.query = i;
        self.direct.clear();
        self.regions.clear();
    }
}

/// A variant on a sequence: length, block size and causality. All index rules live here.
///
/// # Invariants
/// `block ≥ 1` and `block ≤ max(seq_len, 1)` (a larger block gives the same plans as
/// `block = seq_len`, see [`Layout::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    variant: Variant,
    seq_len: usize,
    block: usize,
    causal: bool,
}

/// `⌈√L⌉` (at least 1): the default block size.
pub fn default_block(seq_len: usize) -> usize {
    let mut s = (seq_len as f64).sqrt() as usize;
    while s.saturating_mul(s) < seq_len {
        s += 1;
    }
    while s > 1 && (s - 1).saturating_mul(s - 1) >= seq_len {
        s -= 1;
    }
    s.max(1)
}

impl Layout {
    /// A layout with block size `block` (Fixed block `s`, Axial/Mixture grid width `m`;
    /// Logsparse has no block size and ignores it). A block larger than `seq_len` yields the
    /// same plans as `block = seq_len` and is stored as such.
    ///
    /// # Errors
    /// [`AttentionError::InvalidParameter`] when `block = 0`.
    pub fn new(
        variant: Variant,
        seq_len: usize,
        block: usize,
        causal: bool,
    ) -> Result<Self, AttentionError> {
        if block == 0 {
            return Err(AttentionError::InvalidParameter {
                method: variant.as_str(),
                param: "block",
                value: "0".into(),
                reason: "the block size must be at least 1".into(),
            });
        }
        Ok(Self {
            variant,
            seq_len,
            block: block.min(seq_len.max(1)),
            causal,
        })
    }

    /// [`Layout::new`] with `block = None` meaning the default `⌈√L⌉`.
    ///
    /// # Errors
    /// As [`Layout::new`].
    pub fn with_block(
        variant: Variant,
        seq_len: usize,
        block: Option<usize>,
        causal: bool,
    ) -> Result<Self, AttentionError> {
        Self::new(
            variant,
            seq_len,
            block.unwrap_or_else(|| default_block(seq_len)),
            causal,
        )
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }
    /// Sequence length L.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }
    /// Effective block size (clamped to L).
    pub fn block(&self) -> usize {
        self.block
    }
    /// Causal or bidirectional.
    pub fn causal(&self) -> bool {
        self.causal
    }
    /// Number of grid rows `n = ⌈L / block⌉` (Fixed: number of blocks).
    pub fn rows(&self) -> usize {
        self.seq_len.div_ceil(self.block)
    }
    /// Length of grid row (or block) `r`; the last one may be short.
    pub fn row_len(&self, r: usize) -> usize {
        self.seq_len.saturating_sub(r * self.block).min(self.block)
    }

    /// The routing plan of query `i` (empty when `i ≥ L`).
    pub fn plan(&self, i: usize) -> QueryPlan {
        let mut plan = QueryPlan::default();
        self.plan_into(i, &mut plan);
        plan
    }

    /// Writes the plan of query `i` into `plan`, reusing its allocations (empty when `i ≥ L`).
    ///
    /// # Complexity
    /// O(terms of query i): O(s + L/s) for Fixed/Axial/Mixture, O(log L) for Logsparse.
    pub fn plan_into(&self, i: usize, plan: &mut QueryPlan) {
        plan.reset(i);
        if i >= self.seq_len {
            return;
        }
        match self.variant {
            Variant::Fixed => fixed::plan_into(self, i, plan),
            Variant::Logsparse => logsparse::plan_into(self, i, plan),
            Variant::Axial => axial::plan_into(self, i, plan),
            Variant::Mixture => mixture::plan_into(self, i, plan),
        }
    }

    /// Size of the region id space: every region any query of this layout can use has an id
    /// below this.
    pub fn region_count(&self) -> usize {
        match self.variant {
            Variant::Fixed => fixed::region_count(self),
            Variant::Logsparse => logsparse::region_count(self),
            Variant::Axial => axial::region_count(self),
            Variant::Mixture => mixture::region_count(self),
        }
    }

    /// The region with this id, or `None` when no query of this layout uses that id.
    pub fn region(&self, id: usize) -> Option<Region> {
        match self.variant {
            Variant::Fixed => fixed::region(self, id),
            Variant::Logsparse => logsparse::region(self, id),
            Variant::Axial => axial::region(self, id),
            Variant::Mixture => mixture::region(self, id),
        }
    }

    /// An upper bound on [`QueryPlan::terms`] for every query (`combiner.md` §3.7):
    /// Fixed and Axial `s + ⌈L/s⌉`, Mixture `3⌈L/m⌉ + 3m`, Logsparse `1 + ⌈log₂ L⌉`.
    pub fn max_terms_bound(&self) -> usize {
        let (s, n) = (self.block, self.rows());
        match self.variant {
            Variant::Fixed | Variant::Axial => s + n,
            Variant::Mixture => 3 * n + 3 * s,
            Variant::Logsparse => 1 + logsparse::levels(self.seq_len) as usize,
        }
    }
}

/// The routing plan of query `i` for `variant` on a sequence of `seq_len` tokens with block
/// size `block` (`None` = ⌈√L⌉): its direct keys and its regions. Used by the routing view.
///
/// # Errors
/// [`AttentionError::InvalidParameter`] when `block = Some(0)` or `i ≥ seq_len`.
///
/// ```
/// use attnscope::attention::combiner::{plan_for_query, Variant};
/// // combiner.md §3.6: Fixed causal, L = 16, s = 4, query 9.
/// let plan = plan_for_query(Variant::Fixed, 16, Some(4), true, 9).unwrap();
/// assert_eq!(plan.direct, vec![8, 9]);
/// let regions: Vec<Vec<usize>> = plan.regions.iter().map(|r| r.keys.to_vec()).collect();
/// assert_eq!(regions, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
/// ```
pub fn plan_for_query(
    variant: Variant,
    seq_len: usize,
    block: Option<usize>,
    causal: bool,
    i: usize,
) -> Result<QueryPlan, AttentionError> {
    let layout = Layout::with_block(variant, seq_len, block, causal)?;
    if i >= seq_len {
        return Err(AttentionError::InvalidParameter {
            method: variant.as_str(),
            param: "query",
            value: i.to_string(),
            reason: format!("a query index below seq_len = {seq_len}"),
        });
    }
    Ok(layout.plan(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_block_is_ceil_sqrt() {
        let cases = [
            (0, 1),
            (1, 1),
            (2, 2),
            (4, 2),
            (5, 3),
            (9, 3),
            (10, 4),
            (16, 4),
            (17, 5),
            (1 << 20, 1024),
        ];
        for (l, s) in cases {
            assert_eq!(default_block(l), s, "L = {l}");
        }
    }

    #[test]
    fn keyset_strided_membership_and_display() {
        let col = KeySet::strided(2, 5, 3);
        assert_eq!(col.to_vec(), vec![2, 7, 12]);
        assert!(col.contains(7) && !col.contains(17) && !col.contains(3) && !col.contains(0));
        assert_eq!(col.as_range(), None);
        assert_eq!(KeySet::range(3..3).to_string(), "∅");
        assert_eq!(KeySet::range(3..4).to_string(), "{3}");
        assert_eq!(KeySet::range(3..6).as_range(), Some(3..6));
    }

    #[test]
    fn every_used_region_has_a_stable_id_in_range() {
        for variant in Variant::ALL.iter().copied() {
            for causal in [true, false] {
                for (l, s) in [(1, 1), (7, 3), (10, 3), (16, 4), (17, 4), (33, 5)] {
                    let layout = Layout::new(variant, l, s, causal).unwrap();
                    for i in 0..l {
                        let plan = layout.plan(i);
                        assert!(
                            plan.terms() <= layout.max_terms_bound(),
                            "{variant} L={l} i={i}"
                        );
                        for r in &plan.regions {
                            assert!(r.id < layout.region_count());
                            assert_eq!(layout.region(r.id), Some(*r), "{variant} L={l} i={i}");
                        }
                    }
                    assert!(
                        layout.plan(l).direct.is_empty(),
                        "out-of-range query has an empty plan"
                    );
                }
            }
        }
    }

    #[test]
    fn block_zero_rejected_block_above_length_clamped() {
        let err = Layout::new(Variant::Fixed, 5, 0, true).unwrap_err();
        assert!(matches!(
            err,
            AttentionError::InvalidParameter { param: "block", .. }
        ));
        assert_eq!(Layout::new(Variant::Axial, 5, 99, true).unwrap().block(), 5);
        assert_eq!(
            Layout::with_block(Variant::Mixture, 10, None, false)
                .unwrap()
                .block(),
            4
        );
    }
}
