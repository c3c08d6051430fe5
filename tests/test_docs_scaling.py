"""Every command in docs/scaling.md is run by a test, or says why it cannot run here.

Each command in a ``bash`` block follows a comment ``# run by tests/FILE.py::TEST (how)`` or
``# not run by the tests: WHY``; the latest such comment of the block applies. For ``run by``: the test
exists and its file holds every ``--flag`` of the command. The commands marked as run by
:func:`test_commands_run_here` are run here, in-process, with what their comment says appended."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from genlight.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scaling.md"
MARK = re.compile(r"#\s*(run by (?P<test>tests/[\w/]+\.py::\w+)|not run by the tests: (?P<why>.+))")
HERE = "tests/test_docs_scaling.py::test_commands_run_here"


def commands(text: str) -> list[tuple[str, str]]:
    """``(command, marker)`` for every command of the page's ``bash`` blocks (``\\`` continuations
    joined; snippet includes and comments skipped); ``marker`` is ``""`` when none applies."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        marker, pending = "", ""
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("--8<--") or not stripped:
                continue
            if stripped.startswith("#"):
                found = MARK.match(stripped)
                marker = stripped if found else marker
                continue
            pending += stripped.rstrip("\\").strip() + " "
            if not stripped.endswith("\\"):
                out.append((pending.strip(), marker))
                pending = ""
    return out


def flags(command: str) -> set[str]:
    """The ``--flag`` names of a command (``--a.b=x`` and ``--a.b+=X`` give ``--a.b``)."""
    return {re.split(r"\+?=", t)[0] for t in shlex.split(command) if t.startswith("--")}


def test_every_command_is_run_by_a_test_or_says_why_not() -> None:
    found = commands(DOC.read_text())
    assert len(found) >= 10, found
    for command, marker in found:
        assert marker, f"docs/scaling.md: no '# run by tests/...::test' or '# not run by the tests: why' for: {command}"
        match = MARK.match(marker)
        if match.group("why"):
            assert len(match.group("why").split()) >= 3, f"say why: {marker}"
            continue
        file, test = match.group("test").split("::")
        source = (ROOT / file).read_text()
        names = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
        assert test in names, f"{marker}: no test {test} in {file}"
        if match.group("test") == HERE:  # run as written by test_commands_run_here
            continue
        missing = sorted(f for f in flags(command) if f not in source)
        assert not missing, f"{file} never uses {missing} of: {command}"


def test_the_commands_are_found() -> None:
    """The extraction itself: continuations joined, markers applied to the commands after them."""
    text = "```bash\n# run by tests/a.py::t (x)\na --b 1 \\\n  --c 2\n# node 1\nd --e\n```\n```bash\nf\n```\n"
    assert commands(text) == [("a --b 1 --c 2", "# run by tests/a.py::t (x)"), ("d --e", "# run by tests/a.py::t (x)"),
                              ("f", "")]  # fmt: skip
    assert flags("genlight fit --trainer.callbacks+=Compile --x=1 -c y") == {"--trainer.callbacks", "--x"}


RUN_HERE = [c for c, m in commands(DOC.read_text()) if HERE in m]


@pytest.mark.slow  # a fit each, with the example's callbacks: ~10-60 s on a busy machine
@pytest.mark.parametrize("command", RUN_HERE)
def test_commands_run_here(command: str, tmp_path: Path, monkeypatch) -> None:
    """The cheap commands, as written, with ``--trainer.fast_dev_run true`` (and ``torch.compile``'s
    ``eager`` backend: ``inductor`` takes about a minute to generate code on a CPU)."""
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)
    assert args[0] == "genlight"
    extra = ["--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)]
    if "--trainer.callbacks+=Compile" in args:
        extra += ["--trainer.callbacks.backend", "eager"]
    main([*args[1:], *extra])
    assert any(tmp_path.rglob("*.png")) or any(tmp_path.rglob("*.ckpt")) or any(tmp_path.rglob("config.yaml"))
