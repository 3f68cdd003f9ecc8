"""`lpu run` and `lpu demo`: output as text, exit codes, bad input, atomic output files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import SOURCE

from lpu_emu.core.events import EventLog


@pytest.fixture(scope="module")
def warm_core():
    """Compile the core before the tests read stderr: a cold first run says it is compiling."""
    import contextlib
    import io

    from lpu_emu.core.fast import warm_up

    with contextlib.redirect_stderr(io.StringIO()):
        warm_up()


@pytest.fixture
def prog(tmp_path, monkeypatch, warm_core):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cli.lpu").write_text(SOURCE)
    # VXM0 one cycle late: x and y passed the VXM at cycle 3, nothing passes at 4
    (tmp_path / "late.lpu").write_text(SOURCE.replace("VXM0    @3", "VXM0    @4"))
    return tmp_path


def test_run_prints_cycles_time_and_utilization(lpu, prog):
    r = lpu("run", "cli.lpu")
    assert r.exit_code == 0
    out = r.stdout.splitlines()
    # the Write issues at 6 and commits at 7; 7 cycles at 1.5 GHz are 4.667 ns
    assert out[0] == "cli.lpu on lp30: 7 cycles, 4.667 ns at 1.5 GHz"
    assert out[3].split() == ["MEM", "156", "3", "3", "0.27%"]  # 3 busy cycles / (7 * 156)
    assert out[4].split() == ["VXM", "16", "1", "1", "0.89%"]  # 1 / (7 * 16)
    # two 320-byte reads and one write in 7 cycles at 1.5 GHz: 960 B / 4.667 ns = 205.7 GB/s
    assert out[-2] == "SRAM: 640 B read, 320 B written, 205.7 GB/s of 149.8 TB/s peak (0.14%)"
    assert r.stderr == ""


def test_run_prints_a_tensor(lpu, prog):
    r = lpu("run", "cli.lpu", "--output", "z")
    assert r.exit_code == 0
    tail = r.stdout.split("z (int8, shape (320,)):\n")[1]
    assert tail.startswith("[1 2 3 0 0 0 0 0 ...")  # x + y with y zero


def test_run_json_is_one_object(lpu, prog):
    r = lpu("run", "cli.lpu", "--json", "--output", "z")
    doc = json.loads(r.stdout)
    assert doc["cycles"] == 7 and doc["chip"] == "lp30" and doc["stopped"] is False
    assert doc["violations"] == []
    assert doc["outputs"]["z"]["values"][:4] == [1, 2, 3, 0]
    assert doc["stats"]["busy"] == {"MEM_W1": 1, "MEM_W0": 1, "VXM0": 1, "MEM_E0": 1}


def test_run_violation_exit_1_with_location(lpu, prog):
    r = lpu("run", "late.lpu", "--output", "z=z.npy")
    assert r.exit_code == 1
    assert r.stderr == ("error: cycle 4: VXM0: no-value: nothing passes on stream S0E at "
                        "position 81; S0E from MEM_W1 (late.lpu:7) passes it at cycle 3: 1 cycle "
                        "earlier (late.lpu:9)\n"
                        "note: no tensor printed and no file written: the run stopped at its "
                        "first violation (--lenient runs to the end)\n")
    assert r.stdout.splitlines()[0] == ("late.lpu on lp30: 4 cycles, 2.667 ns at 1.5 GHz "
                                        "(stopped at the first violation)")
    assert not (prog / "z.npy").exists()  # no output from a failed run


def test_run_lenient_warns_and_goes_on(lpu, prog):
    r = lpu("run", "late.lpu", "--lenient", "--json", "--output", "z")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert [(v["kind"], v["cycle"], v["queue"]) for v in doc["violations"]] == [
        ("no-value", 4, "VXM0"), ("no-value", 6, "MEM_E0")]
    assert doc["outputs"]["z"]["values"][:3] == [0, 0, 0]  # the Write took zeros


def test_run_writes_outputs_and_trace(lpu, prog):
    r = lpu("run", "cli.lpu", "--output", "z=z.npy", "--save-outputs", "all.npz",
            "--trace-out", "events.npz")
    assert r.exit_code == 0
    assert np.load(prog / "z.npy")[:4].tolist() == [1, 2, 3, 0]
    saved = np.load(prog / "all.npz")
    assert sorted(saved.files) == ["x", "y", "z"]
    log = EventLog.load(prog / "events.npz")
    # MEM_E0 is the 79th MEM slice; the Write commits at 7, so a Read at 8 sees the sum
    assert log.sram_at(7)[(78, 0, 0)][:4].tolist() == [0, 0, 0, 0]
    assert log.sram_at(8)[(78, 0, 0)][:4].tolist() == [1, 2, 3, 0]


@pytest.mark.parametrize("engine", ("auto", "reference", "fast"))
def test_run_trace_out_is_the_same_log_on_every_engine(lpu, prog, engine):
    r = lpu("run", "cli.lpu", "--engine", engine, "--json", "--trace-out", f"{engine}.npz")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["engine"] == ("reference" if engine == "auto" else engine)
    r = lpu("run", "cli.lpu", "--engine", "fast", "--trace-out", "expected.npz")
    got, expected = EventLog.load(prog / f"{engine}.npz"), EventLog.load(prog / "expected.npz")
    assert got.events.tolist() == expected.events.tolist()
    assert got.values.tobytes() == expected.values.tobytes() and got.meta == expected.meta
    assert got.sram_at(8)[(78, 0, 0)][:4].tolist() == [1, 2, 3, 0]


def test_run_input_replaces_a_tensor(lpu, prog):
    np.save(prog / "y.npy", np.full(320, 5, dtype=np.int8))
    r = lpu("run", "cli.lpu", "--input", "y=y.npy", "--output", "z=z.npy")
    assert r.exit_code == 0
    assert np.load(prog / "z.npy")[:5].tolist() == [6, 7, 8, 5, 5]


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "x=missing.npy"], "error: --input x=missing.npy: no such file\n"),
    (["--input", "x=junk.npy"], "error: --input x=junk.npy: not a .npy file (no NUMPY header)\n"),
    (["--input", "x=bad_shape.npy"],
     "error: input 'x': shape (3, 3) does not match the tensor's shape (320,)\n"),
    (["--input", "x=strings.npy"], "error: input 'x': values of numpy dtype <U1 are not numbers\n"),
    (["--input", "x=big.npy"], "error: input 'x': values 300..300 do not fit int8 (-128..127)\n"),
    (["--input", "q=big.npy"],
     "error: no tensor named 'q' in the program\nhint: tensors: x, y, z\n"),
    (["--output", "q"], "error: no tensor named 'q' in the program\nhint: tensors: x, y, z\n"),
    (["--input", "x"], "error: --input 'x': expected NAME=FILE.npy\n"),
    (["--max-cycles", "5"], "error: the program runs 7 cycles, more than max_cycles 5\n"
                            "hint: raise --max-cycles if that is intended\n"),
])
def test_run_bad_input_exit_2(lpu, prog, args, message):
    (prog / "junk.npy").write_text("hello")
    np.save(prog / "bad_shape.npy", np.zeros((3, 3)))
    np.save(prog / "strings.npy", np.array(["a"] * 320))
    np.save(prog / "big.npy", np.full(320, 300))
    r = lpu("run", "cli.lpu", *args)
    assert r.exit_code == 2
    assert r.stderr == message
    assert r.stdout == ""


def test_run_lpx_for_another_chip(lpu, prog):
    assert lpu("asm", "cli.lpu").exit_code == 0
    r = lpu("run", "cli.lpx", "--chip", "tsp-v1")
    assert r.exit_code == 2
    assert r.stderr == ("error: the program was assembled for chip 'lp30', not 'tsp-v1'\n"
                        "hint: run it with --chip lp30, or reassemble it for tsp-v1\n")


def test_run_outputs_all_or_none(lpu, prog):
    r = lpu("run", "cli.lpu", "--output", "x=x.npy", "--output", "z=nodir/z.npy")
    assert r.exit_code == 2
    assert r.stderr == "error: --output z=nodir/z.npy: the directory nodir does not exist\n"
    assert not (prog / "x.npy").exists()
    assert [p.name for p in prog.iterdir() if p.name.endswith(".tmp")] == []


def test_demo_checks_every_example(lpu, warm_core):
    r = lpu("demo")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "lpu demo: 7 example programs from programs/ on lp30"
    table = {ln.split()[0]: ln.split() for ln in lines[3:10]}
    assert sorted(table) == ["gelu", "matvec", "mxm4", "repeat", "sync", "transpose", "vecadd"]
    assert all(row[1] == "ok" for row in table.values())
    assert table["matvec"][3] == "456"  # cycles, worked out in programs/matvec.lpu
    assert table["mxm4"][3] == "190"  # the budget in programs/mxm4.lpu's header
    assert lines[10] == "every result matches numpy, bit for bit"  # then the compiled layer


def test_demo_runs_only_the_named_examples_in_the_order_given(lpu):
    r = lpu("demo", "gelu", "vecadd", "gelu")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "lpu demo: 2 example programs from programs/ on lp30"
    assert [ln.split()[:2] for ln in lines[3:5]] == [["gelu", "ok"], ["vecadd", "ok"]]
    assert lines[5:] == ["every result matches numpy, bit for bit"]  # and no compiled layer


def test_demo_of_one_example_says_program(lpu):
    r = lpu("demo", "matvec")
    assert r.stdout.splitlines()[0] == "lpu demo: 1 example program from programs/ on lp30"
    r = lpu("demo", "matvec", "--chip", "tsp-v1")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == ["lpu demo: 0 of 1 example program from programs/ run on "
                                     "tsp-v1", "written for lp30 (`lpu demo --chip lp30`): matvec"]


def test_demo_of_the_layer_alone(lpu, warm_core):
    r = lpu("demo", "layer", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["examples"] == [] and doc["not_run"] == [] and doc["ok"] is True
    assert doc["layer"]["report"]["cycles"] == 28528 and doc["layer"]["check"]["ok"] is True
    r = lpu("demo", "layer")
    assert r.stdout.splitlines()[0] == ("compiled: BERT encoder layer, d 384, 12 heads, "
                                        "d_ff 1536, seq 128")


def test_demo_without_the_layer_has_a_null_layer_in_json(lpu):
    doc = json.loads(lpu("demo", "repeat", "--json").stdout)
    assert doc["layer"] is None and doc["ok"] is True
    assert [e["name"] for e in doc["examples"]] == ["repeat"]


def test_demo_of_an_unknown_example_names_the_valid_ones(lpu):
    r = lpu("demo", "vecadd", "vecad")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr == ("error: unknown example 'vecad'\nhint: valid names: vecadd, matvec, "
                        "gelu, transpose, repeat, sync, mxm4, layer\n")
