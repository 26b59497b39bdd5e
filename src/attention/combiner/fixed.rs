//! Combiner-Fixed index sets (`combiner.md` §3.1; official JAX `_SelfAttSqrtn`).
//!
//! Blocks of `s` positions are cut left to right; the last block may be short.
//!
//! * **Causal** (official semantics): query `i` in block `a = i / s` has direct keys
//!   `{a·s, …, i}` and one region per earlier block `b < a` (the whole block).
//! * **Bidirectional** (paper eq. 10): direct keys = the whole own block; one region per other
//!   block `b ≠ a`. (The TF code also summarises the own block; attnscope follows eq. 10.)
//!
//! Region id = block index. Terms per query ≤ `s + ⌈L/s⌉`; the `⌈L/s⌉` summaries cost O(L).

use super::plan::{KeySet, Layout, QueryPlan, Region, RegionKind, SummarySource};

pub(super) fn plan_into(layout: &Layout, i: usize, plan: &mut QueryPlan) {
    let s = layout.block();
    let a = i / s;
    let own_end = if layout.causal() {
        i + 1
    } else {
        (a * s + layout.row_len(a)).min(layout.seq_len())
    };
    plan.direct.extend(a * s..own_end);
    let last = if layout.causal() { a } else { layout.rows() };
    for b in (0..last).filter(|&b| b != a) {
        if let Some(r) = region(layout, b) {
            plan.regions.push(r);
        }
    }
}

pub(super) fn region_count(layout: &Layout) -> usize {
    layout.rows()
}

pub(super) fn region(layout: &Layout, id: usize) -> Option<Region> {
    let len = layout.row_len(id);
    (id < layout.rows() && len > 0).then(|| Region {
        id,
        kind: RegionKind::Block { block: id },
        keys: KeySet::range(id * layout.block()..id * layout.block() + len),
        summary: SummarySource::Pooled,
    })
}
