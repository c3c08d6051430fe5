"""A user's subclass that declares only some of its parent's arguments works, for every family: the
parent's defaults fill the rest, one batch trains, and the checkpoint loads back through
``genlight.load_model``. The subclass calls ``super().__init__`` and not ``save_hyperparameters``
(the family did).

In the default run the subclass also passes the family's other tiny smoke sizes as constants (so each
case takes about a second); under ``-m slow`` it passes nothing but its one argument and the linked
shapes, and every other argument takes the family's default."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

import genlight
from genlight.registry import DATAMODULES, MODELS
from tests.helpers import linked_kwargs, tiny_trainer

LINKED = ("num_levels", "num_classes")

TEMPLATE = '''
class {name}(parent):
    """A user's {family} that exposes only ``{arg}`` (and the linked shapes)."""

    def __init__(self, image_shape=(1, 8, 8), {arg}={value!r}{linked_params}) -> None:
        super().__init__(image_shape=image_shape, {arg}={arg}{linked_args}{constants})
'''


def chosen_argument(parent: type) -> tuple[str, Any]:
    """The one parent argument the subclass declares: the first of the family's tiny smoke arguments
    (so the test stays small), else its first own argument."""
    params = inspect.signature(parent.__init__).parameters
    own = [n for n in params if n not in ("self", "image_shape", *LINKED)]
    name = next((k for k in parent.smoke_kwargs if k in own), own[0])
    return name, parent.smoke_kwargs.get(name, params[name].default)


def make_subclass(family: str, tiny: bool) -> type:
    """``Partial<family>`` (``TinyPartial<family>`` with the other smoke sizes as constants), defined in
    this module (so a checkpoint can name it) by a small template."""
    parent = MODELS.get(family)
    arg, value = chosen_argument(parent)
    params = inspect.signature(parent.__init__).parameters
    linked = [a for a in LINKED if a in params]
    constants = {k: v for k, v in parent.smoke_kwargs.items() if k != arg} if tiny else {}
    name = ("Tiny" if tiny else "") + f"Partial{parent.__name__}"
    source = TEMPLATE.format(
        name=name, family=family, arg=arg, value=value,
        linked_params="".join(f", {a}={params[a].default!r}" for a in linked),
        linked_args="".join(f", {a}={a}" for a in linked),
        constants="".join(f", {k}={v!r}" for k, v in constants.items()),
    )  # fmt: skip
    namespace: dict[str, Any] = {"parent": parent, "__name__": __name__}
    exec(source, namespace)  # noqa: S102 - a fixed template over registry names
    cls = namespace[name]
    globals()[cls.__name__] = cls
    return cls


FAMILIES = [n for n in genlight.list_models() if n not in genlight.list_models(tag="test")]
SUBCLASSES = {(family, tiny): make_subclass(family, tiny) for family in FAMILIES for tiny in (True, False)}


@pytest.mark.parametrize("tiny", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["tiny", "defaults"])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_subclass_with_one_of_its_parents_arguments_fits_and_round_trips(family: str, tiny: bool, tmp_path) -> None:
    parent, cls = MODELS.get(family), SUBCLASSES[family, tiny]
    arg, value = chosen_argument(parent)
    dm = DATAMODULES.get(parent.smoke_data).smoke(tmp_path, **parent.smoke_data_kwargs)
    dm.setup("fit")
    torch.manual_seed(0)
    model = cls(**{**linked_kwargs(cls, dm), arg: value})
    defaults = inspect.signature(parent.__init__).parameters
    for name, param in defaults.items():  # the parent's defaults fill what the subclass does not declare
        if name not in ("self", "image_shape", arg, *LINKED, *parent.smoke_kwargs) and param.default is not inspect.Parameter.empty:
            assert model.hparams[name] == param.default, (family, name)
    trainer = tiny_trainer(**parent.smoke_trainer)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step >= 1
    path = tmp_path / "partial.ckpt"
    trainer.save_checkpoint(path)
    loaded = genlight.load_model(path)
    assert type(loaded) is cls and loaded.hparams[arg] == value
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key].cpu(), tensor.cpu()), (family, key)
