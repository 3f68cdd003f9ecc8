"""`--json` of every reporting command against docs/json.md: each key a command prints is
documented on that page, and each documented key is printed by some sample command."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lpu_emu.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")

# section heading of docs/json.md -> the commands whose output it documents
SAMPLES = {
    "`lpu isa --json`": [["isa"]],
    "`lpu isa MNEMONIC --json` (and each `instructions[]` above)":
        [["isa", m] for m in ("Add", "Repeat", "ACC", "Cvt", "Send")],
    "`lpu chips --json`": [["chips"]],
    "`lpu chips NAME --json`": [["chips", "lp30"], ["chips", "tsp-v1"]],
    "`lpu asm SOURCE --json`, `lpu disasm OBJ -o OUT --json`":
        [["asm", "vecadd.lpu", "-o", "v.lpx"], ["disasm", "vecadd.lpx", "-o", "again.lpu"]],
    "`lpu disasm OBJ --json` (no `-o`)": [["disasm", "vecadd.lpx"]],
    "`lpu run PROGRAM --json`": [["run", "late.lpu", "--lenient", "--output", "z"],
                                 ["run", "vecadd.lpu", "--output", "z"],
                                 ["run", "late.lpu"]],
    "`lpu demo --json`": [["demo"], ["demo", "--chip", "tsp-v1"], ["demo", "vecadd"]],
    "`lpu compile --builtin LAYER --json`": [
        ["compile", "--builtin", "bert-layer", "--seq", "4", "--d-model", "64", "--heads", "2",
         "--d-ff", "128", "--dtype", "bf16", "--run"]],
}


def documented() -> dict[str, list[str]]:
    """heading -> the key patterns of its table."""
    sections = {}
    for part in re.split(r"^## ", DOC, flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        sections[heading.strip()] = re.findall(r"^\| `([^`]+)` \|", body, flags=re.M)
    return sections


def leaves(value, path: str = ""):
    """Paths to every leaf; an empty list is `p[]`, an empty object `p.*`; lists of lists are
    one `[]`."""
    if isinstance(value, dict):
        if not value:
            yield f"{path}.*" if path else "*"
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        inner = path if path.endswith("[]") else path + "[]"
        if not value:
            yield inner
        for v in value:
            yield from leaves(v, inner)
    else:
        yield path


def pattern(key: str) -> re.Pattern:
    """`*` one name, `**` anything below (an empty list `p[]` or object `p.*` is documented
    by the rows below it)."""
    out = re.escape(key).replace(r"\*\*", "\0").replace(r"\*", r"[^.\[\]]+")
    return re.compile(out.replace("\0", ".+") + "$")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, list[dict]]:
    work = tmp_path_factory.mktemp("json")
    shutil.copy(ROOT / "programs" / "vecadd.lpu", work)
    shutil.copy(ROOT / "programs" / "broken" / "late.lpu", work)
    runner = CliRunner(env={"NO_COLOR": "1"})
    cwd = Path.cwd()
    os.chdir(work)
    try:
        assert runner.invoke(main, ["asm", "vecadd.lpu"]).exit_code == 0
        docs = {}
        for heading, commands in SAMPLES.items():
            docs[heading] = []
            for args in commands:
                r = runner.invoke(main, [*args, "--json"], catch_exceptions=False)
                assert r.exit_code in (0, 1), r.output
                docs[heading].append(json.loads(r.stdout))
        return docs
    finally:
        os.chdir(cwd)


def test_every_section_has_samples():
    assert sorted(documented()) == sorted(SAMPLES)


@pytest.mark.parametrize("heading", list(SAMPLES))
def test_json_keys_are_the_documented_ones(heading, outputs):
    patterns = {key: pattern(key) for key in documented()[heading]}
    seen = {p for doc in outputs[heading] for p in leaves(doc)}
    undocumented = sorted(p for p in seen if not any(
        rx.match(p) or (p.endswith(("[]", ".*")) and any(k.startswith(p) for k in patterns))
        for rx in patterns.values()))
    assert undocumented == []
    stale = sorted(k for k, rx in patterns.items() if not any(rx.match(p) for p in seen))
    assert stale == []


def test_json_values_by_hand(outputs):
    run = outputs["`lpu run PROGRAM --json`"]
    assert run[0]["violations"][0]["kind"] == "no-value" and run[0]["stopped"] is False
    assert run[1]["outputs"]["z"]["values"][:3] == [11, 18, 33] and run[1]["cycles"] == 7
    assert run[2]["stopped"] is True and run[2]["outputs"] == {}  # a stopped run shows none
    demo = outputs["`lpu demo --json`"]
    assert demo[0]["ok"] is True and len(demo[0]["examples"]) == 7 and demo[0]["not_run"] == []
    assert demo[1]["examples"] == [] and {e["chip"] for e in demo[1]["not_run"]} == {"lp30"}
    asm, disasm = outputs["`lpu asm SOURCE --json`, `lpu disasm OBJ -o OUT --json`"]
    assert (asm["instructions"], asm["first_cycle"], asm["last_cycle"]) == (4, 0, 6)
    assert disasm["output"] == "again.lpu"
    isa = outputs["`lpu isa --json`"][0]
    assert len(isa["instructions"]) == 42 and isa["dtypes"]["bf16"] == {
        "code": 4, "width": 2, "kind": "float"}
