"""Capabilities are the object's: ``isinstance(model, ConditionalSampler)`` is true for an instance that
takes labels and false for one that does not, whatever its class; ``genlight list models`` names the
arguments that make an instance conditional."""

from __future__ import annotations

import pytest
import torch

from genlight import create_model
from genlight.registry import MODELS
from genlight.types import ConditionalSampler, capabilities, class_count, is_conditional

from tests.helpers import digits_datamodule, linked_kwargs


def smoke(name: str, **overrides):
    cls = MODELS.get(name)
    return cls(**{**cls.smoke_kwargs, **linked_kwargs(cls, digits_datamodule()), **overrides})


@pytest.mark.parametrize("name", ["gan", "dcgan", "wgan_gp", "progan", "infogan", "nade", "pixelcnn"])
def test_families_that_take_no_label_are_no_conditional_sampler(name: str) -> None:
    model = smoke(name)
    assert not isinstance(model, ConditionalSampler), f"{name} takes no label"
    assert "ConditionalSampler" not in capabilities(model) and "Sampler" in capabilities(model)
    assert class_count(model) == 0 and not hasattr(model, "num_classes")


@pytest.mark.parametrize(
    ("name", "switch", "extra"),
    [("ddpm", "conditional", {}), ("gated_pixelcnn", "conditional", {}),
     ("aae", "supervised", {"prior": "mixture_of_gaussians"})],
)  # fmt: skip
def test_optional_conditioning_is_answered_per_instance(name: str, switch: str, extra: dict) -> None:
    on, off = smoke(name, **{switch: True}, **extra), smoke(name, **{switch: False}, **extra)
    assert type(on) is type(off)
    assert isinstance(on, ConditionalSampler) and is_conditional(on) and class_count(on) == 10
    assert not isinstance(off, ConditionalSampler) and not is_conditional(off) and class_count(off) == 0
    assert on.sample(2, y=torch.tensor([3, 4])).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError):
        off.sample(2, y=torch.tensor([3, 4]))


def test_capabilities_of_an_instance() -> None:
    assert capabilities(smoke("dcgan")) == ("Sampler", "LatentGenerator", "Featurizer")
    assert capabilities(smoke("cgan")) == ("Sampler", "ConditionalSampler", "LatentGenerator", "Featurizer")
    assert capabilities(create_model("cyclegan", image_shape=(1, 8, 8), width_g=4, n_blocks=1, width_d=4)) == (
        "Translator",)  # fmt: skip


def test_the_class_listing_names_families_that_can_take_labels() -> None:
    built_in = {n for n in MODELS.list(capability=ConditionalSampler) if MODELS.get(n).__module__.startswith("genlight.")}
    assert built_in == {"aae", "cgan", "cvae", "ddpm", "gated_pixelcnn", "text2image"}
    assert {n for n in built_in if MODELS.get(n).conditional_with} == {"aae", "ddpm", "gated_pixelcnn"}


def test_list_models_says_how_an_instance_becomes_conditional(capsys: pytest.CaptureFixture[str]) -> None:
    from genlight.cli.commands import list_command

    assert list_command(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for name in ("gan", "dcgan", "wgan_gp", "progan", "infogan", "nade"):
        assert "ConditionalSampler" not in lines[name], lines[name]
    assert "ConditionalSampler (with --model.conditional true)" in lines["ddpm"]
    assert "ConditionalSampler (with --model.conditional true)" in lines["gated_pixelcnn"]
    assert "ConditionalSampler (with --model.supervised true)" in lines["aae"]
    assert "[Sampler, ConditionalSampler, LatentGenerator]" in lines["cgan"]
