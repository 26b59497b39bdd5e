#!/usr/bin/env python3
"""Times numpy dense attention on the shapes of `benches/kernels.rs` (dense group) and writes
the same CSV columns, so the runtime plot can overlay it.

Optional: exits 0 with a message where numpy is absent.

    python3 scripts/bench_numpy.py [--out target/bench/numpy.csv] [--quick]

numpy builds the whole L x L score matrix (S = Q K^T * scale, row softmax, P V), the usual
"naive" implementation; FLOPs are counted as 4*L*L*d like the Rust bench. Thread counts are set
with threadpoolctl when available (else via OPENBLAS_NUM_THREADS/OMP_NUM_THREADS before import).
Note: some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for old OpenBLAS builds; they slow
a current numpy down, so unset both for this command only when benchmarking.
"""

import argparse
import contextlib
import os
import statistics
import sys
import time

HEAD_DIM = 64
COLUMNS = "source,kernel,variant,causal,seq_len,head_dim,threads,repeats,median_ms,min_ms,flops,gflops,cpu_ms"


def machine_line():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}; {os.cpu_count()} hardware threads"


def attention(np, q, k, v, causal):
    l = q.shape[0]
    s = (q @ k.T) * np.float32(1.0 / np.sqrt(q.shape[1]))
    if causal:
        s[np.triu_indices(l, 1)] = -np.inf
    s -= s.max(axis=1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    return s @ v


def time_it(fn, budget_s, min_reps):
    fn()
    samples = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    while len(samples) < min_reps or (time.perf_counter() - start < budget_s and len(samples) < 30):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / len(samples)
    return len(samples), statistics.median(samples), min(samples), cpu_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="target/bench/numpy.csv")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    try:
        import numpy as np
    except ImportError:
        print("bench_numpy: numpy is not installed; skipping (pip install numpy to run it)")
        return 0
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None

    lens = [512, 1024] if args.quick else [512, 1024, 2048, 4096, 8192]
    thread_counts = [1, 2] if (os.cpu_count() or 1) >= 2 else [1]
    rng = np.random.default_rng(0)
    rows = []
    for l in lens:
        q, k, v = (rng.standard_normal((l, HEAD_DIM), dtype=np.float32) for _ in range(3))
        for threads in thread_counts:
            if threadpool_limits is None and threads != thread_counts[-1]:
                continue  # the BLAS thread count cannot change without threadpoolctl
            limit = threadpool_limits(limits=threads) if threadpool_limits else contextlib.nullcontext()
            with limit:
                for causal in (False, True):
                    reps, med, mn, cpu = time_it(lambda: attention(np, q, k, v, causal), 0.6, 3)
                    flops = 4.0 * l * l * HEAD_DIM
                    row = (
                        f"numpy,full,,{str(causal).lower()},{l},{HEAD_DIM},{threads},{reps},"
                        f"{med:.4f},{mn:.4f},{flops:.0f},{flops / (med * 1e-3) / 1e9:.2f},{cpu:.4f}"
                    )
                    print(row, file=sys.stderr)
                    rows.append(row)
    text = f"# machine: {machine_line()}; numpy {np.__version__}\n{COLUMNS}\n" + "\n".join(rows) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
