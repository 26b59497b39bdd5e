//! Combiner-Mixture index sets (`combiner.md` §3.4a; official JAX `_AxialMixtureAtt`).
//!
//! Row-major grid of width `m = block`, `n = ⌈L/m⌉` rows, position `i = (r, c)`.
//!
//! * **Causal** (official semantics): direct keys = own column above (`(t, c)`, `t < r`) ∪ own
//!   row up to `c`; regions = for every other column `c' ≠ c` its part above row `r`
//!   (vertical plan), and for every earlier row `t < r` its part left of `c` and its part right
//!   of `c` (horizontal plan). All in one softmax; a past key off the own row and column is
//!   reachable by two routes.
//! * **Bidirectional** (attnscope's extension, *not from the sources*): direct keys = own row ∪
//!   own column; regions = for every other column its part above and its part below row `r`,
//!   and for every other row its part left and its part right of column `c` (empty parts
//!   dropped).
//!
//! Region ids: four tables of `n·m` slots (column-above by `(c', r)`, column-below by
//! `(c', r)`, row-left by `(t, c)`, row-right by `(t, c)`). Terms per query ≤ `3n + 3m`; the
//! O(L) summaries cost O(L·(n + m)).

use super::plan::{KeySet, Layout, QueryPlan, Region, RegionKind, SummarySource};

const ABOVE: usize = 0;
const BELOW: usize = 1;
const LEFT: usize = 2;
const RIGHT: usize = 3;

fn slots(layout: &Layout) -> usize {
    layout.rows() * layout.block()
}

/// Number of rows `t` in which column `c` exists.
fn column_len(layout: &Layout, c: usize) -> usize {
    let (m, seq_len) = (layout.block(), layout.seq_len());
    if c >= m.min(seq_len) {
        0
    } else {
        (seq_len - c).div_ceil(m)
    }
}

pub(super) fn plan_into(layout: &Layout, i: usize, plan: &mut QueryPlan) {
    let (m, n) = (layout.block(), layout.rows());
    let (r, c) = (i / m, i % m);
    let col_len = column_len(layout, c);
    plan.direct.extend((0..r).map(|t| t * m + c));
    let row_end = if layout.causal() {
        i + 1
    } else {
        r * m + layout.row_len(r)
    };
    plan.direct.extend(r * m..row_end);
    if !layout.causal() {
        plan.direct.extend((r + 1..col_len).map(|t| t * m + c));
    }
    let mut push = |table: usize, index: usize| {
        if let Some(reg) = region(layout, table * slots(layout) + index) {
            plan.regions.push(reg);
        }
    };
    // Vertical plan: every other column, above (and, bidirectional, below) the query row.
    for cc in (0..m).filter(|&cc| cc != c) {
        if r > 0 {
            push(ABOVE, cc * n + r);
        }
        if !layout.causal() {
            push(BELOW, cc * n + r);
        }
    }
    // Horizontal plan: every earlier (bidirectional: every other) row, left and right of c.
    let last_row = if layout.causal() { r } else { n };
    for t in (0..last_row).filter(|&t| t != r) {
        let left = c.min(layout.row_len(t));
        if left > 0 {
            push(LEFT, t * m + left);
        }
        push(RIGHT, t * m + c);
    }
}

pub(super) fn region_count(layout: &Layout) -> usize {
    4 * slots(layout)
}

pub(super) fn region(layout: &Layout, id: usize) -> Option<Region> {
    let (m, n) = (layout.block(), layout.rows());
    let per = slots(layout);
    if per == 0 {
        return None;
    }
    let (table, index) = (id / per, id % per);
    let causal = layout.causal();
    let (kind, keys) = match table {
        ABOVE => {
            let (column, rows) = (index / n, index % n);
            (
                RegionKind::ColumnAbove { column, rows },
                KeySet::strided(column, m, rows),
            )
        }
        BELOW if !causal => {
            let (column, row) = (index / n, index % n);
            let len = column_len(layout, column).saturating_sub(row + 1);
            let from_row = row + 1;
            (
                RegionKind::ColumnBelow { column, from_row },
                KeySet::strided(from_row * m + column, m, len),
            )
        }
        LEFT => {
            let (row, columns) = (index / m, index % m);
            if columns > layout.row_len(row) {
                return None;
            }
            (
                RegionKind::RowLeft { row, columns },
                KeySet::range(row * m..row * m + columns),
            )
        }
        RIGHT => {
            let (row, c) = (index / m, index % m);
            let from_column = c + 1;
            let len = layout.row_len(row).saturating_sub(from_column);
            (
                RegionKind::RowRight { row, from_column },
                KeySet::range(row * m + from_column..row * m + from_column + len),
            )
        }
        _ => return None,
    };
    (!keys.is_empty()).then_some(Region {
        id,
        kind,
        keys,
        summary: SummarySource::Pooled,
    })
}
