"""The docs site builds with `mkdocs build --strict`: a broken link, a missing include or a bad API
reference fails here (and in `make test`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}  # fmt: skip
    result = subprocess.run(  # no -q: it hides the warnings that --strict counts, and the build passes
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    site = tmp_path / "site"
    assert "check_family" in (site / "api" / "testing" / "index.html").read_text()  # mkdocstrings rendered
    page = (site / "write-a-family" / "index.html").read_text()
    assert "PixelMixture" in page and "log_softmax" in page  # the checked example file, included
    assert (site / "benchmarks" / "results").is_dir()  # the results files, as pages


def test_scaling_page_quotes_the_two_node_test():
    """The 2-node command on the scaling page is the one tests/test_multinode.py runs (through the same
    script), so the page shows a tested command."""
    from tests.test_multinode import VAE

    text = (ROOT / "docs" / "scaling.md").read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith("NODE_RANK=") and "127.0.0.1" in line]
    assert [line.split()[0] for line in lines] == ["NODE_RANK=0", "NODE_RANK=1"]
    for line in lines:
        assert line.split("examples/scale/torchrun_2nodes.sh ", 1)[1].rstrip(" &").split() == [
            "fit", *VAE, "--trainer.max_epochs", "2"]  # fmt: skip
