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
    check_generated_pages(site)


def _text(page: Path) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def check_generated_pages(site: Path) -> None:
    """What docs/hooks.py generates from the code is on the built pages: every range type of
    genlight.ranges and every protocol of genlight.types on "Write a family", and an API entry for every
    module of genlight.modules and genlight.nn."""
    import inspect

    import genlight.ranges as ranges
    import genlight.types as types

    family = _text(site / "write-a-family" / "index.html")
    range_types = [n for n in ranges.__all__ if ranges.describe(getattr(ranges, n))]
    assert len(range_types) >= 20 and all(f"{n}" in family and ranges.describe(getattr(ranges, n)) in family for n in range_types)
    protocols = [n for n, c in vars(types).items() if inspect.isclass(c) and getattr(c, "_is_runtime_protocol", False)]
    assert len(protocols) >= 13 and all(n in family for n in protocols), protocols
    for base in ("GenerativeModule", "AutoregressiveImageModel", "AdversarialModule", "NormalizingFlow"):
        assert base in family
    for package in ("modules", "nn"):
        api = (site / "api" / package / "index.html").read_text()
        modules = [p.stem for p in (ROOT / "genlight" / package).glob("*.py") if not p.stem.startswith("_")]
        missing = [m for m in modules if f'id="genlight.{package}.{m}"' not in api]
        assert not missing, f"api/{package}.md lacks {missing}"
    datamodule = _text(site / "write-a-datamodule" / "index.html")
    assert "StripesDataModule" in datamodule and "load_datasets" in datamodule


def test_the_plugin_pyproject_on_the_page_is_complete():
    """The plug-in pyproject.toml of "Write a family" parses, builds with setuptools, and declares both
    entry-point groups that genlight's registries read."""
    import tomllib

    from genlight.registry import DATAMODULES, MODELS

    page = (ROOT / "docs" / "write-a-family.md").read_text()
    block = page.split("## In your own package", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    config = tomllib.loads(block)
    assert config["build-system"]["build-backend"] == "setuptools.build_meta"
    assert config["project"]["dependencies"] == ["genlight"]
    groups = config["project"]["entry-points"]
    assert set(groups) == {MODELS.group, DATAMODULES.group}
    assert all(":" in target for group in groups.values() for target in group.values())
    assert "pip install -e ." in page


def test_layout_lists_the_layers_of_the_import_contract():
    """The Layout section of docs/index.md names the layers of the import-linter contract in
    pyproject.toml, top to bottom, each on its own line, with the same members."""
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in config if c["type"] == "layers"]
    text = (ROOT / "docs" / "index.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    documented = []
    for line in block.splitlines():
        if line.startswith("genlight/"):
            head = re.split(r"\s{2,}", line)[0]
            documented.append([re.sub(r"^genlight/|/$|\.py$", "", m.strip()) for m in head.split(" : ")])
    assert documented == [[m.strip() for m in layer.split(":")] for layer in layers]


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
