"""``features(x)``: every registered family that has a frozen representation gives one, ``(B, F)``,
finite, deterministic in eval mode, without touching the model (parameters, buffers in eval mode,
train/eval flags); the families without one are listed below, with the reason, and nowhere else."""

from __future__ import annotations

import pytest
import torch

from genlight import list_models
from genlight import testing as kit

#: the registered families without ``features(x)``, and why (the test below checks the list is exact)
NO_FEATURES = {
    "cyclegan": "a translator: its two PatchGAN critics judge translations into each domain, and neither "
    "they nor the generators give one representation of the training images; use translate()",
    "stargan": "a multi-domain translator: its critic (real/fake + domain head) judges translations, like cyclegan's",
    "puzzlegan": "a patch completer: its discriminator judges (image, patch-mask) pairs, so a plain image has no "
    "representation without inventing a mask",
    "text2image": "its discriminator scores (image, caption) pairs: no representation of an image alone",
}
FAMILIES = [name for name in list_models() if name not in list_models(tag="test")]


def _has_features(model: torch.nn.Module, x: torch.Tensor) -> bool:
    if not callable(getattr(model, "features", None)):
        return False
    try:
        model.features(x[:2])
    except NotImplementedError:
        return False
    return True


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _modes(model: torch.nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("name", FAMILIES)
def test_features_are_frozen_finite_and_deterministic(name, tmp_path):
    model, dm, _ = kit.smoke_setup(name, tmp_path)
    x = next(iter(dm.train_dataloader()))[0][:6]
    if not _has_features(model, x):
        assert name in NO_FEATURES, f"{name} has no features(x): implement it or list it in NO_FEATURES with the reason"
        return
    assert name not in NO_FEATURES, f"{name} has features(x): remove it from NO_FEATURES"

    model.train()  # train mode: the flags and the parameters stay as they are
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    modes = _modes(model)
    model.features(x)
    assert _modes(model) == modes
    for k, p in model.named_parameters():
        assert torch.equal(p, params[k]), f"{name}.features changed parameter {k}"

    model.eval()
    state, modes = _state(model), _modes(model)
    first = model.features(x)
    second = model.features(x)
    assert first.dim() == 2 and first.shape[0] == len(x) and first.shape[1] >= 1, tuple(first.shape)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second), f"{name}.features is not deterministic in eval mode"
    assert torch.allclose(model.features(x[:3]), first[:3], atol=1e-5), f"{name}.features of an image depends on the batch"
    assert _modes(model) == modes
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), f"{name}.features changed {k} in eval mode"
    assert first.std(0).max() > 0, f"{name}.features gives every image the same representation"


def test_no_features_lists_only_registered_families():
    assert set(NO_FEATURES) <= set(FAMILIES), sorted(set(NO_FEATURES) - set(FAMILIES))
