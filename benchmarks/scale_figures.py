"""The scale figures of docs/scale.md, measured with the ``theorybench`` command as a user runs
it: ``python benchmarks/scale_figures.py [cold warm busy dask local-vs-dask] [--suite smoke]``.

* ``cold``: ``theorybench run SUITE --no-record`` with a bare environment (no
  ``OMP_NUM_THREADS``, no ``THEORYBENCH_*``) and an empty cell cache;
* ``warm``: the same command again on the cache ``cold`` filled (target ≤ 10 % of cold);
* ``busy``: ``cold`` while one other single-threaded process spins (target ≤ 2× cold);
* ``dask``: ``--executor dask --jobs 2`` (a LocalCluster of two single-threaded workers on
  127.0.0.1), cold, against ``local-2``: ``--jobs 2`` with the local executor, cold; the ratio
  of wall times, and whether the measurement tables are identical (records are written to
  temporary folders for this comparison and deleted afterwards).

Each run reports its wall time and the per-family split of the cells' wall time. Nothing is
timed inside a test: run this on a quiet machine and copy the printed table. This module has
no import-time side effects, so asv's discovery can import it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE_DROP = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "THEORYBENCH_THREADS",
             "THEORYBENCH_CACHE_DIR", "THEORYBENCH_DATA_ROOT")


def bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in BARE_DROP}
    env.setdefault("THEORYBENCH_ROOT", str(ROOT))
    return env | extra


def theorybench(*args: str, env: dict[str, str]) -> float:
    """Run ``theorybench ARGS`` (this interpreter's package) and return its wall time."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "theorybench", *args]  # as the installed command starts
    done = subprocess.run(command, cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"theorybench {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return wall


def families(records: Path) -> dict[str, float]:
    split: dict[str, float] = defaultdict(float)
    for path in records.glob("*.json"):
        rec = json.loads(path.read_text())
        split[rec["family"]] += rec["wall_s"]
    return dict(sorted(split.items()))


def tables(records: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["task_id"]: json.loads(p.read_text())["table"]
            for p in records.glob("*.json")}


def largest_difference(a: dict, b: dict | None) -> float:
    """The largest relative difference between two stored tables' numbers (inf when their
    shapes or non-numeric values differ)."""
    if b is None or a["columns"] != b["columns"] or len(a["data"]) != len(b["data"]):
        return float("inf")
    gap = 0.0
    for row_a, row_b in zip(a["data"], b["data"], strict=True):
        for x, y in zip(row_a, row_b, strict=True):
            if x == y:
                continue
            if not (isinstance(x, int | float) and isinstance(y, int | float)):
                return float("inf")
            gap = max(gap, abs(x - y) / max(abs(x), abs(y)))
    return gap


def spinner() -> subprocess.Popen:
    """One single-threaded busy process (the competing load of the issue's measurements)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", default=["cold", "warm", "busy", "dask"])
    parser.add_argument("--suite", default="smoke")
    args = parser.parse_args()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache, runs = Path(tmp) / "cache", Path(tmp) / "runs"
        base = ("run", args.suite, "--cache-dir", str(cache))

        def measure(name: str, *extra: str, busy: bool = False, keep: str | None = None,
                    cached: bool = True) -> float:
            folder = runs / name
            record_args = ("--results-dir", str(folder)) if keep else ("--no-record",)
            cache_args = () if cached else ("--no-cache",)
            load = spinner() if busy else None
            try:
                wall = theorybench(*base, *record_args, *cache_args, *extra, env=bare_env())
            finally:
                if load:
                    load.kill()
                    load.wait()
            split = ", ".join(f"{k} {v:.0f}s" for k, v in families(folder).items()) \
                if keep else ""
            rows.append((name, wall, split))
            print(f"{name:>10}: {wall:7.1f} s  {split}", flush=True)
            return wall

        if "cold" in args.what or "warm" in args.what:
            cold = measure("cold", keep="cold")
            if "warm" in args.what:
                warm = measure("warm")
                print(f"      warm/cold = {warm / cold:.1%} (target ≤ 10 %)")
        if "busy" in args.what:
            quiet = next((w for n, w, _ in rows if n == "cold"), None)
            busy = measure("busy", busy=True, cached=False, keep="busy")
            if quiet:
                print(f"      busy/quiet = {busy / quiet:.2f}× (target ≤ 2×)")
        if "dask" in args.what:
            local = measure("local-2", "--jobs", "2", "--threads", "1", cached=False,
                            keep="local-2")
            dask = measure("dask-2", "--executor", "dask", "--jobs", "2", "--threads", "1",
                           cached=False, keep="dask-2")
            here, there = tables(runs / "local-2"), tables(runs / "dask-2")
            differ = {task: largest_difference(here[task], there.get(task))
                      for task in sorted(here) if here[task] != there.get(task)}
            print(f"      dask/local = {dask / local:.2f}; identical tables: "
                  f"{len(here) - len(differ)} of {len(here)}")
            for task, gap in differ.items():
                print(f"      {task}: largest relative difference {gap:.1e}")


if __name__ == "__main__":
    main()
