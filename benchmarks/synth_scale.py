"""Synthetic-operator throughput and peak memory at scale.

    python benchmarks/synth_scale.py --subscribers 1000000 --days 30 --workers 2

Writes a JSON line to benchmarks/results/synth_scale.jsonl and deletes the generated data unless --keep.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from opencem.synth.generator import SynthConfig, generate
from opencem.synth.summary import table_counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="where to write (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    root = a.out or Path(tempfile.mkdtemp(prefix="opencem-bench-"))
    out = root / "operator"
    cfg = SynthConfig(subscribers=a.subscribers, days=a.days, seed=a.seed, workers=a.workers)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  {done}/{total} chunk-days", flush=True)

    t0 = time.perf_counter()
    generate(out, cfg, progress=progress, overwrite=True)
    wall = time.perf_counter() - t0
    counts = table_counts(out / "inputs")
    rows = sum(n for _, n, _, _ in counts)
    mib = sum(m for _, _, _, m in counts)
    # ru_maxrss is in KiB on Linux; for children it is the largest single child
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "benchmark": "synth_scale", "subscribers": a.subscribers, "days": a.days, "workers": a.workers,
        "wall_s": round(wall, 1), "rows": rows, "rows_per_s": round(rows / wall),
        "xdr_rows": next(n for t, n, _, _ in counts if t == "xdr"),
        "input_mib": round(mib, 1), "peak_rss_parent_mib": round(parent), "peak_rss_largest_worker_mib": round(child),
        "cpus": __import__("os").cpu_count(), "python": platform.python_version(),
    }
    print(json.dumps(result))
    with open(Path(__file__).parent / "results" / "synth_scale.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    if not a.keep:
        shutil.rmtree(root if a.out is None else out)


if __name__ == "__main__":
    main()
