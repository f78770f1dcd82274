"""The same inputs, seed and backend give byte-identical outputs, run after run.

Two solves of texas in separate processes (so no cache, no warm solver state and no
shared random generator can make them agree) write plan.csv, options.csv and
cashflows.csv byte for byte alike, and summary.json alike but for ``timings_s``: the
one key that measures the run rather than describes its result. (report.html records
when it was written, and is not compared.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .support import REPO

TEXAS = REPO / "scenarios" / "texas.yaml"
SAME_BYTES = ("plan.csv", "options.csv", "cashflows.csv")
TIMING_KEYS = {"timings_s"}


def test_two_runs_write_the_same_bytes(tmp_path: Path):
    outs = [tmp_path / "first", tmp_path / "second"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITEOPT_")}
    args = ["solve", str(TEXAS), "--scenarios", "300", "--seed", "11", "--backend", "numpy"]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "siteopt", *args, "--no-report", "--quiet", "--out", str(out)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    first, second = outs
    for name in SAME_BYTES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    a, b = (json.loads((out / "summary.json").read_text()) for out in outs)
    assert a.keys() == b.keys()
    assert {k for k in a if a[k] != b[k]} <= TIMING_KEYS
    assert a["seed"] == 11 and a["scenarios"] == 300 and a["status"] == "optimal"
