//! Combiner-Axial (rowmajor) index sets (`combiner.md` §3.3a; official JAX
//! `_SelfAttAxialRowmajor`, TF `axial_rowmajor`).
//!
//! The sequence is a row-major grid of width `m = block`; position `i = (r, c)` with
//! `r = i / m`, `c = i % m`; only the last row may be partial.
//!
//! * **Causal:** direct keys = own row up to `i`; one abstraction per earlier row `r' < r`,
//!   whose summary value is the (unmasked) in-row attention of the query at `(r', c)` over row
//!   `r'`, and whose summary key is `key_row` (`wsum`: the same attention applied to the keys;
//!   `none`: `k_{r',c}`).
//! * **Bidirectional:** direct keys = the whole own row; one abstraction per other row
//!   `r' ≠ r` (the own row is not summarised, as in eq. 10). When `(r', c)` does not exist in a
//!   partial last row `r'`, that row's abstraction uses pooled summaries, as Fixed does.
//!
//! Region id = the position `(r', c)` whose query forms the summary (`0..L`), and `L` for the
//! pooled summary of a partial last row. Terms per query ≤ `m + ⌈L/m⌉`; the `L` summaries cost
//! O(L·m).

use super::plan::{KeySet, Layout, QueryPlan, Region, RegionKind, SummarySource};

pub(super) fn plan_into(layout: &Layout, i: usize, plan: &mut QueryPlan) {
    let m = layout.block();
    let (r, c) = (i / m, i % m);
    let own_end = if layout.causal() {
        i + 1
    } else {
        r * m + layout.row_len(r)
    };
    plan.direct.extend(r * m..own_end);
    let last = if layout.causal() { r } else { layout.rows() };
    for rr in (0..last).filter(|&rr| rr != r) {
        let id = if c < layout.row_len(rr) {
            rr * m + c
        } else {
            layout.seq_len()
        };
        if let Some(reg) = region(layout, id) {
            plan.regions.push(reg);
        }
    }
}

pub(super) fn region_count(layout: &Layout) -> usize {
    layout.seq_len() + 1
}

pub(super) fn region(layout: &Layout, id: usize) -> Option<Region> {
    let (m, seq_len) = (layout.block(), layout.seq_len());
    if id < seq_len {
        let row = id / m;
        // Causal plans never summarise the last row.
        if layout.causal() && row + 1 >= layout.rows() {
            return None;
        }
        Some(Region {
            id,
            kind: RegionKind::Row { row },
            keys: KeySet::range(row * m..row * m + layout.row_len(row)),
            summary: SummarySource::Position(id),
        })
    } else if id == seq_len && !layout.causal() && seq_len % m != 0 {
        let row = layout.rows() - 1;
        Some(Region {
            id,
            kind: RegionKind::Row { row },
            keys: KeySet::range(row * m..seq_len),
            summary: SummarySource::Pooled,
        })
    } else {
        None
    }
}
