"""Every numeric argument of every family, datamodule and callback has its range in its type
(:mod:`genlight.ranges`), and construction from Python enforces it: a value out of range is refused with
one line naming the argument, never accepted silently and never a traceback from deep inside torch."""

from __future__ import annotations

import inspect
import typing

import lightning.pytorch as pl
import pytest
from PIL import Image

import genlight
import genlight.callbacks as callbacks
from genlight.errors import ConfigError
from genlight.ranges import check_arguments, describe, fits, init_hints, is_numeric
from genlight.registry import DATAMODULES, MODELS
from tests.helpers import linked_kwargs

HUGE_INT, HUGE_FLOAT = 10**12, 1e12

CALLBACKS = sorted(
    {obj for name in callbacks.__all__ if isinstance(obj := getattr(callbacks, name), type) and issubclass(obj, pl.Callback)},
    key=lambda c: c.__name__,
)
CLASSES = (
    [("model", MODELS.get(n)) for n in genlight.list_models()]
    + [("datamodule", DATAMODULES.get(n)) for n in genlight.list_datamodules()]
    + [("callback", c) for c in CALLBACKS]
)


def reachable_arguments(cls: type) -> set[str]:
    """The ``__init__`` arguments a caller can pass: the class's own and, through ``**kwargs``, its parents'."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return names


def numeric_arguments(cls: type) -> dict[str, list]:
    """``name -> [its annotation in every class of the MRO that declares it]`` for the numeric arguments."""
    reachable = reachable_arguments(cls)
    found: dict[str, list] = {}
    for _, hints in init_hints(cls):
        for name, hint in hints.items():
            if name in reachable:
                found.setdefault(name, []).append(hint)
    return {n: h for n, h in found.items() if is_numeric(h[0])}


def build(kind: str, cls: type, tmp_path, **overrides):
    if kind == "model":
        data = DATAMODULES.get(cls.smoke_data).smoke(tmp_path, **cls.smoke_data_kwargs)
        return cls(**{**cls.smoke_kwargs, **linked_kwargs(cls, data), **overrides})
    if kind == "datamodule":
        if "data_dir" in inspect.signature(cls.__init__).parameters:  # a folder with one image (image_folder scans it)
            folder = tmp_path / "images"
            folder.mkdir(exist_ok=True)
            Image.new("RGB", (8, 8)).save(folder / "a.png")
            overrides = {"data_dir": str(folder), **overrides}
        return cls.smoke(tmp_path, **overrides)
    required = {"every_n_epochs": 1} if cls is callbacks.PeriodicCallback else {}
    return cls(**{**required, **overrides})


def _restricted(hint) -> bool:
    options = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (typing.Union, type(int | None)) else [hint]
    return all(describe(h) is not None or typing.get_origin(h) is typing.Literal for h in options)


@pytest.mark.parametrize(("kind", "cls"), CLASSES, ids=[c.__name__ for _, c in CLASSES])
def test_every_numeric_argument_has_a_range_and_construction_enforces_it(kind, cls, tmp_path):
    arguments = numeric_arguments(cls)
    plain = [n for n, hints in arguments.items() if not _restricted(hints[0])]
    assert not plain, f"{cls.__name__}: give {plain} a range type from genlight.ranges"
    for name, hints in arguments.items():
        floaty = any(h is float or (isinstance(h, type) and issubclass(h, float)) for hint in hints for h in [hint, *typing.get_args(hint)])
        for value in (0, -1, HUGE_FLOAT if floaty else HUGE_INT):
            expected_ok = all(fits(h, value) for h in hints)
            try:
                build(kind, cls, tmp_path, **{name: value})
            except ValueError as err:  # ConfigError, IncompatibleDataError, ImageShapeError are ValueErrors
                message = str(err)
                assert "\n" not in message and name in message, f"{cls.__name__}({name}={value}): {message!r}"
            else:
                assert expected_ok, f"{cls.__name__}({name}={value}) was accepted but its type says otherwise"


# the cases a new user hit (issue: "every value is checked"), from Python
@pytest.mark.parametrize(
    ("name", "kwargs", "needle"),
    [
        ("ddpm", {"bound_timesteps": 0}, "bound_timesteps must be an integer in [1, 100000], got 0"),
        ("ddpm", {"timesteps": 100, "sample_steps": 500}, "sample_steps must be at most timesteps (100), got 500"),
        ("ddpm", {"eta": -1}, "eta must be a number in [0, 1], got -1"),
        ("ddpm", {"guidance": -3}, "guidance must be a number >= 0, got -3"),
        ("ddpm", {"sample_steps": 0}, "sample_steps must be an integer in [1, 100000], got 0"),
        ("ddpm", {"channels": 0}, "channels must be an integer in [1, 4096], got 0"),
        ("ddpm", {"lr": -0.001}, "lr must be a number > 0, got -0.001"),
        ("vae", {"lr": 0}, "lr must be a number > 0, got 0"),
        ("vae", {"beta": -1}, "beta must be a number >= 0, got -1"),
        ("vae", {"latent_dim": 0}, "latent_dim must be an integer in [1, 4096], got 0"),
        ("vae", {"latent_dim": -3}, "latent_dim must be an integer in [1, 4096], got -3"),
        ("vae", {"eval_samples": 0}, "eval_samples must be an integer >= 1, got 0"),
        ("vae", {"hidden_channels": 0}, "hidden_channels must be an integer in [1, 4096], got 0"),
        ("dcgan", {"latent_dim": 0}, "latent_dim must be an integer in [1, 4096], got 0"),
        ("dcgan", {"width": 0}, "width must be an integer in [1, 4096], got 0"),
        ("dcgan", {"betas": (1.5, 0.9)}, "every value of betas must be a number in [0, 1), got [1.5, 0.9]"),
    ],
)
def test_the_reported_cases_are_refused_in_one_line(name, kwargs, needle):
    with pytest.raises(ConfigError) as info:
        genlight.create_model(name, **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_check_arguments_reads_the_ranges_of_the_whole_init_chain():
    class Child(MODELS.get("vae")):
        def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), latent_dim: int = 4) -> None:  # a plain int
            super().__init__(image_shape=image_shape, latent_dim=latent_dim, hidden_channels=8)

    with pytest.raises(ConfigError, match=r"Child: latent_dim must be an integer in \[1, 4096\], got 0"):
        Child(latent_dim=0)
    check_arguments(Child(), {"latent_dim": 3})  # in range: nothing raised


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.latent_dim", "0"], "--model.latent_dim must be an integer in [1, 4096], got 0"),
        (["--model.latent_dim", "abc"], "--model.latent_dim must be an integer in [1, 4096], got abc"),
        (["--model.lr=-0.001"], "--model.lr must be a number > 0, got -0.001"),
        (["--data.subset", "0"], "--data.subset must be an integer >= 1, got 0"),  # an optional argument
        (["--data.val_fraction", "1.5"], "--data.val_fraction must be a number in [0, 1), got 1.5"),
    ],
)
def test_explain_parse_error_restates_jsonargparse_in_one_line(args, expected):
    from jsonargparse import ArgumentParser

    from genlight.ranges import explain_parse_error

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(MODELS.get("vae"), "model")
    parser.add_class_arguments(DATAMODULES.get("mnist"), "data")
    with pytest.raises(Exception) as info:  # noqa: PT011 - jsonargparse's ArgumentError
        parser.parse_args(args)
    assert explain_parse_error(str(info.value)) == expected
    assert explain_parse_error("Parser key \"model\": unknown option") is None


def _as_the_cli_passes(cls: type, kwargs: dict) -> dict:
    """``kwargs`` plus every numeric default, each as an instance of its restricted type, as jsonargparse
    passes parsed values to ``__init__`` (``Size(8)``, not ``8``)."""
    out = dict(kwargs)
    params = inspect.signature(cls.__init__).parameters
    for _, hints in init_hints(cls):
        for name, hint in hints.items():
            value = out.get(name, params[name].default if name in params else None)
            if name not in params or value is None or isinstance(value, bool):
                continue
            options = [h for h in (typing.get_args(hint) or [hint]) if h is not type(None)]
            if typing.get_origin(hint) is tuple and describe(options[0]):  # betas: tuple[Fraction, Fraction]
                out[name] = tuple(options[0](v) for v in value)
            elif isinstance(value, (int, float)) and describe(options[0]):
                out[name] = options[0](value)
    return out


@pytest.mark.parametrize("name", genlight.list_models())
def test_checkpointed_state_holds_plain_numbers_when_built_from_restricted_instances(name, tmp_path):
    """What the CLI passes must not reach a checkpoint: hyper-parameters and optimizer states load with
    ``torch.load(weights_only=True)`` and hold builtin numbers only."""
    import torch

    cls = MODELS.get(name)
    data = DATAMODULES.get(cls.smoke_data).smoke(tmp_path, **cls.smoke_data_kwargs)
    model = cls(**_as_the_cli_passes(cls, {**cls.smoke_kwargs, **linked_kwargs(cls, data)}))
    optimizers = model.configure_optimizers()
    if isinstance(optimizers, dict):
        optimizers = [optimizers["optimizer"]]
    elif isinstance(optimizers, tuple) and len(optimizers) == 2 and isinstance(optimizers[0], list):
        optimizers = optimizers[0]
    elif not isinstance(optimizers, (list, tuple)):
        optimizers = [optimizers]
    optimizers = [o["optimizer"] if isinstance(o, dict) else o for o in optimizers]
    state = {"hparams": dict(model.hparams), "initial": dict(model.hparams_initial),
             "optimizers": [o.state_dict() for o in optimizers]}  # fmt: skip
    torch.save(state, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    assert loaded["hparams"].keys() == state["hparams"].keys()
