"""`lpu compile --builtin ...` and the compiled layer of `lpu demo`: options and their errors,
the report against the Plan counted here, the written program against the compiled one, the
numpy check, and the README's `lpu demo` sample against the command's output."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import lines
from test_cli_imports import run_commands

from lpu_emu.asm.assembler import assemble_file
from lpu_emu.compiler.layers import bert_encoder_layer, random_weights
from lpu_emu.compiler.pipeline import compile_graph
from lpu_emu.compiler.schedule import data_bound
from lpu_emu.core.plan import OP, QUEUE, make_plan
from lpu_emu.program import Program

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--seq", "4", "--d-model", "64", "--heads", "2", "--d-ff", "128", "--dtype", "bf16"]


@pytest.fixture(scope="module")
def small_compiled():
    """The program `lpu compile --builtin bert-layer SMALL` compiles, built here directly."""
    return compile_graph(bert_encoder_layer(random_weights(64, 128, 0), 4, 2), "lp30", "bf16")


@pytest.mark.parametrize("args, message", [
    (["--builtin", "bert"], "error: --builtin 'bert' is not one of: bert-layer, gpt-layer"),
    (["--builtin", "bert-layer", "--dtype", "fp64"],
     "error: --dtype 'fp64' is not one of: fp32, bf16, fp16, int8, fp8"),
    (["--builtin", "bert-layer", "--decode"],
     "error: --decode is a gpt-layer option (a decode step against a KV cache)"),
    (["--builtin", "bert-layer", "--seq", "0"], "error: --seq must be at least 1, not 0"),
    (["--builtin", "bert-layer", "--heads", "5"],
     "error: --d-model 384 is not a multiple of --heads 5"),
    (["--builtin", "gpt-layer", "--d-model", "1000000"],
     "error: a layer of d_model 1000000, d_ff 2048 and seq 64 does not fit in lp30's SRAM "
     "(511,180,800 bytes)"),
    (["--builtin", "bert-layer", "-o", "out.txt"],
     "error: -o out.txt: the file must end in .lpu or .lpx"),
    (["--builtin", "bert-layer", "--chip", "lp31"], "error: unknown chip 'lp31'"),
])
def test_compile_bad_options_are_usage_errors(lpu, args: list[str], message: str) -> None:
    r = lpu("compile", *args)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.splitlines()[0].startswith(message)


def test_compile_needs_a_model_or_a_builtin(lpu) -> None:
    r = lpu("compile")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "error: give a model file (MODEL.onnx) or --builtin LAYER, not neither",
        "hint: built-in layers: bert-layer, gpt-layer"]


def test_compile_help_imports_no_numba() -> None:
    r = run_commands([["compile", "--help"]])
    assert r.returncode == 0, r.stderr
    assert "numba modules: 0" in r.stdout


def test_compile_json_is_the_plan_counted(lpu, small_compiled) -> None:
    r = lpu("compile", "--builtin", "bert-layer", *SMALL, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    c = small_compiled
    plan = make_plan(c.program, c.target.chip, c.target.isa)
    isa = c.target.isa
    acc = plan.issues[:, OP] == isa.lookup("ACC").opcode
    reads = np.isin(plan.issues[:, OP], [isa.lookup(m).opcode for m in ("Read", "Gather")])
    writes = np.isin(plan.issues[:, OP], [isa.lookup(m).opcode for m in ("Write", "Scatter")])
    assert doc["name"] == "bert_layer.lpu" and doc["chip"] == "lp30" and doc["mode"] == "bf16"
    assert doc["cycles"] == plan.cycles
    assert doc["instructions"] == len(c.program) and doc["issues"] == len(plan)
    assert doc["mxm"]["macs"] == int(acc.sum()) * 320 * 320
    assert sum(p["issues"]["ACC"] for p in doc["mxm"]["planes"].values()) == int(acc.sum())
    assert doc["sram"]["reads"] == int(reads.sum())
    assert doc["sram"]["bytes"] == int((reads | writes).sum()) * 320
    busy_w0 = int(plan.issues[plan.issues[:, QUEUE] == c.target.chip.slice_named("MXM_W0").index,
                              18].sum())  # OCC column
    assert doc["mxm"]["planes"]["MXM_W0"]["busy"] == busy_w0
    roof = doc["roofline"]
    best = max(roof["resources"], key=lambda x: x["cycles"])
    assert roof["binding"] == best["name"] and roof["bound"] == best["cycles"]
    assert roof["efficiency"] == pytest.approx(best["cycles"] / plan.cycles, rel=1e-12)
    # the kernels ordered by data alone, in the plan's units (a kernel ends a cycle after its
    # last effect lands)
    assert doc["data_bound"] == data_bound(c.placed, c.target) - 1
    assert "check" not in doc


def test_compile_text_report(lpu, small_compiled) -> None:
    r = lpu("compile", "--builtin", "bert-layer", *SMALL)
    assert r.exit_code == 0, r.stderr
    out = lines(r.stdout)
    plan = make_plan(small_compiled.program, small_compiled.target.chip, small_compiled.target.isa)
    assert out[0].startswith(f"bert_layer.lpu on lp30, bf16: {plan.cycles:,} cycles, ")
    assert out[1] == (f"{len(small_compiled.program):,} instructions, {len(plan):,} issues "
                      "(Repeats expanded)")
    assert out[2].startswith("MXM: ")
    assert out[4].split() == ["unit", "issues", "busy", "cycles", "busy"]
    assert [line.split()[0] for line in out[6:10]] == ["MXM_W0", "MXM_W1", "MXM_E0", "MXM_E1"]
    assert any(re.match(r"roofline: [\d,]+ cycles, bound by [A-Za-z ]+; schedule efficiency "
                        r"\d+\.\d%$", line) for line in out)


def test_compile_writes_assembly_that_assembles_to_the_program(lpu, tmp_path: Path,
                                                             small_compiled) -> None:
    out = tmp_path / "bert.lpu"
    r = lpu("compile", "--builtin", "bert-layer", *SMALL, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert lines(r.stdout)[-1] == f"wrote {out}"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("; compiled by lpu-emu: bert.lpu for lp30, bf16 mode")
    p = assemble_file(out)
    want = small_compiled.program
    assert np.array_equal(p.word, want.word) and np.array_equal(p.cycle, want.cycle)
    assert np.array_equal(p.queue, want.queue)


def test_compile_writes_an_object_file(lpu, tmp_path: Path, small_compiled) -> None:
    out = tmp_path / "bert.lpx"
    r = lpu("compile", "--builtin", "bert-layer", *SMALL, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    p = Program.load(out)
    assert np.array_equal(p.word, small_compiled.program.word)
    assert np.array_equal(p.cycle, small_compiled.program.cycle)


def test_compile_run_checks_against_numpy(lpu) -> None:
    r = lpu("compile", "--builtin", "bert-layer", *SMALL, "--run", "--json")
    assert r.exit_code == 0, r.stderr
    check = json.loads(r.stdout)["check"]
    assert check["bound"] == 2e-2 and check["ok"] is True
    assert check["relative"] == check["max_abs_error"] / check["max_abs_value"]
    assert 0 < check["relative"] <= 2e-2


def test_compile_decode_step_runs_against_the_cache(lpu) -> None:
    r = lpu("compile", "--builtin", "gpt-layer", "--decode", *SMALL, "--run")
    assert r.exit_code == 0, r.stderr
    out = lines(r.stdout)
    assert out[0].startswith("gpt_decode0.lpu on lp30, bf16: ")
    assert re.fullmatch(r"against numpy: max abs error \S+ / max abs value \S+ = \S+ <= 0.02: ok",
                        out[-1])


UPDATE = os.environ.get("LPU_UPDATE_GOLDENS") == "1"  # rewrite the samples from the output
ASM_PAGE = 45  # instruction lines of the worked example's assembly page


def _block(command: str) -> re.Pattern:
    return re.compile(r"^```\n\$ lpu " + re.escape(command) + r"\n(.*?)^```$", re.S | re.M)


def _readme_sample(command: str, page: str = "README.md") -> list[str]:
    """The lines of a page's fenced sample that opens with `$ lpu COMMAND`."""
    block = _block(command).search((ROOT / page).read_text(encoding="utf-8"))
    assert block, f"{page} has no `$ lpu {command}` sample"
    return [line.rstrip() for line in block.group(1).splitlines()]


def _check_sample(command: str, output: list[str], page: str = "README.md") -> None:
    """The sample equals the output; LPU_UPDATE_GOLDENS=1 rewrites the sample instead."""
    if UPDATE:
        path = ROOT / page
        text = _block(command).sub(lambda m: "```\n$ lpu " + command + "\n"
                                   + "\n".join(output) + "\n```", path.read_text("utf-8"),
                                   count=1)
        path.write_text(text, encoding="utf-8")
    assert output == _readme_sample(command, page)


def test_compile_output_is_the_readme_sample(lpu) -> None:
    command = "compile --builtin bert-layer --seq 16 --dtype bf16 --run"
    r = lpu(*command.split())
    assert r.exit_code == 0, r.stderr
    _check_sample(command, lines(r.stdout))


def test_compile_output_is_the_docs_worked_example(lpu, tmp_path: Path, monkeypatch) -> None:
    command = "compile --builtin bert-layer --seq 16 --dtype bf16 -o bert16.lpu"
    monkeypatch.chdir(tmp_path)
    r = lpu(*command.split())
    assert r.exit_code == 0, r.stderr
    _check_sample(command, lines(r.stdout), "docs/compiler.md")
    # the page of assembly shown there is the file's: its header, then its first instructions
    text = [ln.rstrip() for ln in (tmp_path / "bert16.lpu").read_text().splitlines()]
    first = next(i for i, ln in enumerate(text) if re.match(r" {8}\S+\s+@0 ", ln))
    page = [*text[:3], "...", *text[first:first + ASM_PAGE]]
    doc_path = ROOT / "docs" / "compiler.md"
    shown = re.compile(r"^```\n(; compiled by lpu-emu: .*?)^```$", re.S | re.M)
    if UPDATE:
        doc_path.write_text(shown.sub(lambda m: "```\n" + "\n".join(page) + "\n```",
                                      doc_path.read_text("utf-8"), count=1), encoding="utf-8")
    block = shown.search(doc_path.read_text(encoding="utf-8"))
    assert block and block.group(1).splitlines() == page


def test_demo_shows_the_compiled_layer(lpu) -> None:
    r = lpu("demo")
    assert r.exit_code == 0, r.stderr
    out = lines(r.stdout)
    k = out.index("compiled: BERT encoder layer, d 384, 12 heads, d_ff 1536, seq 128")
    assert out[k + 1].startswith("bert_layer.lpu on lp30, bf16: ")
    assert out[k + 2].startswith("MXM: ")
    assert out[k + 3].startswith("roofline: ")
    assert out[k + 4].startswith("against numpy: ") and out[k + 4].endswith("<= 0.02: ok")
    _check_sample("demo", out)


def test_progress_bar_shows_on_a_terminal_after_the_delay(monkeypatch) -> None:
    import io
    import time

    from rich.console import Console

    import lpu_emu.cli.compile as C

    buf = io.StringIO()
    monkeypatch.setattr(C, "make_console", lambda stderr=False: Console(
        file=buf, force_terminal=True, width=80, color_system=None))
    monkeypatch.setattr(C, "PROGRESS_DELAY_S", 0.05)
    stages = C.Stages(2)
    with stages.running():
        stages.stage("compiling bert-layer")
        time.sleep(0.5)
        stages.stage("planning")
        time.sleep(0.3)
    assert stages.done == 1 and stages.progress is not None
    assert "compiling bert-layer" in buf.getvalue()


def test_progress_bar_stays_hidden_for_quick_work(monkeypatch) -> None:
    import io

    from rich.console import Console

    import lpu_emu.cli.compile as C

    buf = io.StringIO()
    monkeypatch.setattr(C, "make_console", lambda stderr=False: Console(
        file=buf, force_terminal=True, width=80, color_system=None))
    stages = C.Stages(2)
    with stages.running():
        stages.stage("compiling")
        stages.stage("planning")
    assert stages.progress is None and buf.getvalue() == ""


@pytest.mark.parametrize("layer", ["bert-layer", "gpt-layer"])
@pytest.mark.parametrize("dtype, bound", [("fp32", 1e-4), ("bf16", 2e-2), ("fp16", 2e-2),
                                          ("int8", 5e-2), ("fp8", 1e-1)])
def test_compile_run_every_mode_within_its_bound(lpu, layer: str, dtype: str,
                                                 bound: float) -> None:
    args = ["--seq", "4", "--d-model", "64", "--heads", "2", "--d-ff", "128", "--dtype", dtype]
    r = lpu("compile", "--builtin", layer, *args, "--run", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["mode"] == dtype and doc["check"]["bound"] == bound
    assert doc["check"]["ok"] is True and doc["check"]["relative"] <= bound


def test_progress_bar_not_started_after_the_work_ended(monkeypatch) -> None:
    import io

    from rich.console import Console

    import lpu_emu.cli.compile as C

    monkeypatch.setattr(C, "make_console", lambda stderr=False: Console(
        file=io.StringIO(), force_terminal=True, width=80, color_system=None))
    stages = C.Stages(1)
    with stages.running():
        stages.stage("compiling")
    stages._show(C.make_console())  # a timer firing late
    assert stages.progress is None
