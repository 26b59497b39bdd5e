//! Combiner-Logsparse index sets (`combiner.md` §3.2; official JAX `_SelfAttLogn`).
//!
//! With `K = (L−1).bit_length()` levels (the official `⌈log₂(L−1)⌉` drops a level when `L−1`
//! is a power of two, §6.1; attnscope fixes this so the last query reaches every key):
//!
//! * **Causal:** query `p` has direct keys `{p}` plus `{p−1}` when `p` is odd (level 0), and
//!   for every level `1 ≤ l < K` with bit `l` of `p` set, the dyadic block
//!   `[((p>>l)−1)·2^l, (p>>l)·2^l)` as a region. These blocks tile `[0, p)` exactly.
//! * **Bidirectional** (attnscope's mirror construction, *not from the sources*): in addition,
//!   for every level `l < K` with bit `l` of `p` clear, the right sibling block
//!   `[((p>>l)+1)·2^l, ((p>>l)+2)·2^l)` clipped to `[0, L)` (dropped when empty); at level 0
//!   this is the direct key `p+1`. Together they tile `(p, L)`.
//!
//! Logsparse has no block-size parameter. Region id = offset of level `l` + block index.
//! Terms per query ≤ `1 + K = 1 + ⌈log₂ L⌉`; the summaries cost O(L) per level.

use super::plan::{KeySet, Layout, QueryPlan, Region, RegionKind, SummarySource};

/// Number of dyadic levels `K = (L−1).bit_length()` (0 for L ≤ 1).
pub fn levels(seq_len: usize) -> u32 {
    let x = seq_len.saturating_sub(1);
    usize::BITS - x.leading_zeros()
}

/// Number of (possibly clipped) blocks of size `2^level` covering `[0, L)`.
fn blocks_at(seq_len: usize, level: u32) -> usize {
    seq_len.div_ceil(1usize << level)
}

/// Id of the first block of `level` (levels start at 1).
fn level_offset(seq_len: usize, level: u32) -> usize {
    (1..level).map(|l| blocks_at(seq_len, l)).sum()
}

pub(super) fn plan_into(layout: &Layout, p: usize, plan: &mut QueryPlan) {
    let seq_len = layout.seq_len();
    let k = levels(seq_len);
    if p % 2 == 1 {
        plan.direct.push(p - 1);
    }
    plan.direct.push(p);
    if !layout.causal() && p.is_multiple_of(2) && p + 1 < seq_len {
        plan.direct.push(p + 1);
    }
    for l in 1..k {
        let b = p >> l;
        let target = if b & 1 == 1 {
            Some(b - 1)
        } else if layout.causal() {
            None
        } else {
            Some(b + 1)
        };
        if let Some(r) = target.and_then(|t| block_region(seq_len, l, t)) {
            plan.regions.push(r);
        }
    }
}

fn block_region(seq_len: usize, level: u32, block: usize) -> Option<Region> {
    let start = block.checked_shl(level)?;
    if start >= seq_len || block >= blocks_at(seq_len, level) {
        return None;
    }
    let end = ((block + 1) << level).min(seq_len);
    Some(Region {
        id: level_offset(seq_len, level) + block,
        kind: RegionKind::Dyadic { level, block },
        keys: KeySet::range(start..end),
        summary: SummarySource::Pooled,
    })
}

pub(super) fn region_count(layout: &Layout) -> usize {
    let seq_len = layout.seq_len();
    level_offset(seq_len, levels(seq_len).max(1))
}

pub(super) fn region(layout: &Layout, id: usize) -> Option<Region> {
    let seq_len = layout.seq_len();
    let mut offset = 0;
    for l in 1..levels(seq_len) {
        let count = blocks_at(seq_len, l);
        if id < offset + count {
            let block = id - offset;
            // Causal plans only use even-indexed blocks (the left sibling of an odd block).
            if layout.causal() && block % 2 == 1 {
                return None;
            }
            return block_region(seq_len, l, block);
        }
        offset += count;
    }
    None
}
