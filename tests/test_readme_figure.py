"""The README picture's scripts: every registered family gets a panel (benchmark grid or short-budget
grid) or is named as left out, and the committed picture matches the committed index."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import genlight

ROOT = Path(__file__).resolve().parents[1]


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_family_has_a_panel_or_is_named_left_out() -> None:
    samples = script("family_samples")
    todo, left_out = samples.families()
    assert {"ae", "vae", "ddpm", "pixelrnn_diag", "glow"} <= set(todo)
    assert {"cnn_classifier", "mlp_classifier"} <= set(left_out)
    assert not set(todo) & set(samples.BENCHMARKED)
    own = {n for n in genlight.list_models() if genlight.get_model_class(n).__module__.startswith("genlight.modules.")}
    assert set(todo) | set(left_out) | set(samples.BENCHMARKED) == own


def test_budget_is_written_as_lightning_max_time() -> None:
    samples = script("family_samples")
    assert samples.budget_text(90) == "00:00:01:30"
    assert samples.budget_text(3725) == "00:01:02:05"


def test_committed_index_names_a_grid_per_trained_family() -> None:
    index = json.loads((ROOT / "docs" / "images" / "families" / "families.json").read_text())
    todo, left_out = script("family_samples").families()
    assert set(index["families"]) == set(todo)
    assert index["left_out"] == left_out
    panels, named = script("readme_figure").family_panels()
    assert len(panels) == len(todo) and named == left_out
    assert all(path.is_file() and title.split(",")[0].split(" ")[0] in todo for title, path in panels)
    assert all(title.endswith(" s") for title, _ in panels)  # every panel says its budget
