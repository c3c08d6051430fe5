"""benchmarks/gan_digits.py end to end on a few optimizer steps (slow: trains and scores 1000 samples)."""

from __future__ import annotations

import json
import sys

import pytest
from PIL import Image


@pytest.mark.slow
def test_gan_digits_smoke(tmp_path, monkeypatch) -> None:
    from benchmarks import gan_digits

    monkeypatch.setattr(sys, "argv", ["gan_digits.py", "--families", "dcgan", "no_such_family", "--steps", "6",
                                      "--evals", "2", "--threads", "1", "--out", str(tmp_path)])  # fmt: skip
    gan_digits.main()
    results = json.loads((tmp_path / "gan_digits.json").read_text())
    row = results["rows"]["dcgan"]
    assert row["steps"] == 6 and row["fid_train"] > results["_floor"]["fid_train"]
    assert 0.0 <= row["mem_q10"] <= 1.0 and 1.0 <= row["class_entropy_exp"] <= 10.0
    assert row["checkpoint"].startswith(("final by val FID", "best periodic by val FID"))
    assert results["skipped"] == {"no_such_family": "not registered"}
    assert len(results["arithmetic"]["stats"]["ink"]) == len(results["arithmetic"]["stats"]["scales"])
    md = (tmp_path / "gan_digits.md").read_text()
    assert "| dcgan |" in md and "<!-- gan_digits table -->" in md and "`no_such_family` (not registered)" in md
    assert Image.open(tmp_path / "gan_digits.png").width > 300
