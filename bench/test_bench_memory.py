"""Peak memory of running a compiled model: the BERT layer (seq 128, bf16, lp30) saved as a .lpx
with its inputs, loaded and run in a fresh process that reports its peak resident set (VmHWM of
/proc/self/status; resource.getrusage's ru_maxrss where there is no /proc: Linux carries the
parent's high-water mark into ru_maxrss across fork + exec, so a big pytest parent would show
through, tests/core/test_memory.py), against a process that only imports the core and loads the same
program (the floor). Issue 10: the run stays under 1 GB. The traced run's peak and its event log
size per issue are reported beside it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from lpu_emu.compiler.builtin import build

RESULTS: dict[str, dict] = {}
# the heading of RESULTS in the session's summary
SUMMARY = "lpu-emu memory: peak RSS of a fresh process (MiB), ratios to the load-only process"
SEQ = 128
# argv: the .lpx, the inputs' .npz, and what to do: load | run | trace
CHILD = """
import json, resource, sys
import numpy as np
from lpu_emu.core.run import run
from lpu_emu.program import Program
program = Program.load(sys.argv[1])
inputs = dict(np.load(sys.argv[2]))
out = {}
if sys.argv[3] != "load":
    result = run(program, inputs=inputs, engine="fast", trace=sys.argv[3] == "trace")
    assert result.ok, result.violations[0].message
    if result.events is not None:
        out["log_bytes"] = int(result.events.events.nbytes + result.events.values.nbytes)
        out["issues"] = int(result.events.meta["issues"])
try:
    status = open("/proc/self/status").read()
    out["maxrss_kb"] = next(int(line.split()[1]) for line in status.splitlines()
                            if line.startswith("VmHWM"))
except OSError:
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps(out))
"""


def _child(lpx: Path, npz: Path, what: str) -> dict:
    """-P: lpu_emu as installed, never the source tree in cwd (see test_bench_core._wall)."""
    proc = subprocess.run([sys.executable, "-P", "-c", CHILD, str(lpx), str(npz), what],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def saved():
    built = build("bert-layer", seq=SEQ, dtype="bf16")
    with tempfile.TemporaryDirectory() as tmp:
        lpx, npz = Path(tmp) / "bert_layer.lpx", Path(tmp) / "inputs.npz"
        built.compiled.program.save(lpx)
        np.savez(npz, **built.compiled.inputs_for(built.inputs()))
        yield lpx, npz


def test_peak_rss_bert_layer_seq128(benchmark, saved):
    floor = _child(*saved, "load")
    ran = _child(*saved, "run")
    traced = _child(*saved, "trace")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    mb = 1024  # ru_maxrss is in KiB: MiB
    RESULTS[f"bert_layer_seq{SEQ}_bf16"] = figures = {
        "issues": traced["issues"], "load_only_mb": floor["maxrss_kb"] / mb,
        "run_peak_mb": ran["maxrss_kb"] / mb, "run_vs_load": ran["maxrss_kb"] / floor["maxrss_kb"],
        "traced_peak_mb": traced["maxrss_kb"] / mb,
        "traced_vs_run": traced["maxrss_kb"] / ran["maxrss_kb"],
        "log_mb": traced["log_bytes"] / 1e6,
        "log_bytes_per_issue": traced["log_bytes"] / traced["issues"]}
    benchmark.extra_info.update(figures)
    assert ran["maxrss_kb"] < 1024 * mb, f"peak RSS {ran['maxrss_kb'] / mb:.0f} MiB"  # issue 10
    # little noise here (238 MiB, 4.68x the load-only 51 MiB; traced 582 MiB, 2.45x): 2x
    assert figures["run_vs_load"] < 10 and figures["traced_vs_run"] < 5
