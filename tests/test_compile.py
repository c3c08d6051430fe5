"""``torch.compile`` through :class:`genlight.callbacks.Compile`: the same training as without it (to a
tolerance), checkpoints without ``_orig_mod.`` that load into an uncompiled model, one warning line
and an uncompiled run when the backend does not work, and a declaration that names real networks for
every family.

The default tests use the ``aot_eager`` backend (dynamo's graph capture and AOT autograd, no code
generation: seconds); ``inductor`` generates C++ on the CPU (gcc is needed; about a minute per family
here), so its tests are slow."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from genlight import load_model
from genlight.callbacks import Compile
from genlight.callbacks.compile import compiled_networks
from genlight.registry import MODELS
from genlight.testing import cpu_trainer, smoke_setup

BUILT_IN = [name for name in MODELS.list() if MODELS.get(name).__module__.startswith("genlight.")]


def fit(family: str, root: Path, compile_backend: str | None, steps: int = 3) -> tuple[pl.LightningModule, pl.Trainer]:
    pl.seed_everything(0, verbose=False)
    model, dm, trainer_kwargs = smoke_setup(family, root / "data")
    callbacks = [Compile(backend=compile_backend)] if compile_backend else []
    trainer = cpu_trainer(str(root), max_steps=steps, limit_val_batches=1, num_sanity_val_steps=0,
                          callbacks=callbacks + trainer_kwargs.pop("callbacks", []), **trainer_kwargs)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return model, trainer


def assert_same_training(family: str, root: Path, backend: str, atol: float, noise: str = "$^") -> list[str]:
    """3 steps compiled = 3 steps uncompiled: every logged figure and every weight to ``atol``; weights
    whose names match ``noise`` only to 1e-3 (see the inductor test)."""
    plain, t0 = fit(family, root / "plain", None)
    compiled, t1 = fit(family, root / "compiled", backend)
    names = next(c for c in t1.callbacks if isinstance(c, Compile)).compiled
    a, b = plain.state_dict(), compiled.state_dict()
    assert list(a) == list(b), "compiling changed the state_dict keys"
    for k in a:
        if a[k].is_floating_point():
            tol = 1e-3 if re.fullmatch(noise, k) else atol
            assert torch.allclose(a[k], b[k], atol=tol, rtol=0), f"{family}: {k} differs by {(a[k] - b[k]).abs().max()}"
    for k, v in t0.callback_metrics.items():
        assert float(t1.callback_metrics[k]) == pytest.approx(float(v), abs=atol, rel=atol), k
    return names


def test_compiled_vae_trains_like_the_uncompiled_one(tmp_path: Path) -> None:
    names = assert_same_training("vae", tmp_path, "aot_eager", atol=1e-6)
    assert names == ["encoder", "decoder"]


def test_checkpoint_of_a_compiled_model_has_plain_keys_and_loads_uncompiled(tmp_path: Path) -> None:
    model, trainer = fit("dcgan", tmp_path, "aot_eager", steps=2)
    path = tmp_path / "compiled.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    assert not [k for k in state if "_orig_mod" in k]
    loaded = load_model(path)
    assert set(loaded.state_dict()) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    torch.manual_seed(3)
    z = torch.randn(4, model.hparams.latent_dim)
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.allclose(model.generator(z), loaded.generator(z), atol=1e-6)


def test_a_backend_that_does_not_work_warns_once_and_trains_uncompiled(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"Compile: torch.compile \(backend 'no_such_backend'\) does not work on cpu") as seen:
        _, trainer = fit("vae", tmp_path, "no_such_backend", steps=1)
    assert len([w for w in seen if "Compile:" in str(w.message)]) == 1
    assert next(c for c in trainer.callbacks if isinstance(c, Compile)).compiled == []
    assert trainer.global_step == 1


def test_containers_stand_for_their_members_and_declarations_name_real_networks(tmp_path: Path) -> None:
    cyclegan = smoke_setup("cyclegan", tmp_path / "c")[0]
    assert sorted(compiled_networks(cyclegan)) == ["discriminators.a", "discriminators.b", "generators.a2b", "generators.b2a"]
    assert list(compiled_networks(smoke_setup("wgan_gp", tmp_path / "w")[0])) == ["generator"]  # the critic: double backward
    assert compiled_networks(smoke_setup("nade", tmp_path / "n")[0]) == {}  # its weights live on the module itself
    for name in BUILT_IN:
        cls = MODELS.get(name)
        if cls.compile_modules is not None:
            model = smoke_setup(name, tmp_path / name)[0]
            for sub in cls.compile_modules:
                assert any(True for _ in model.get_submodule(sub).parameters()), f"{name}: {sub} holds no parameters"


@pytest.mark.slow  # every family under aot_eager: 1-90 s each here (DDPM, Glow, RealNVP the longest)
@pytest.mark.parametrize("name", BUILT_IN)
def test_every_family_trains_compiled_like_uncompiled(name: str, tmp_path: Path) -> None:
    assert_same_training(name, tmp_path, "aot_eager", atol=1e-6)


@pytest.mark.slow  # inductor generates and compiles C++: about a minute per family here
@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="inductor needs a C compiler")
@pytest.mark.parametrize("name", ["vae", "dcgan"])
def test_inductor_on_the_cpu_trains_like_uncompiled(name: str, tmp_path: Path) -> None:
    """Generated kernels reorder float sums: figures and weights agree to 1e-5, except DCGAN's biases of
    layers followed by batch norm, which removes them: their gradient is 0 in exact arithmetic and float
    noise in practice, and Adam turns noise into steps of about ``lr`` whatever its size (measured up to
    5e-4 apart after 3 steps, lr 2e-4); they change no output."""
    # the layers whose output goes into a batch norm: G's projection and the block convs (the next block
    # starts with its norm), D's second conv (trunk.2, then trunk.3 = BatchNorm2d); and the running means of
    # those norms, which hold those biases
    noise = r"generator\.(project|blocks\.\d+\.conv)\.bias|discriminator\.trunk\.2\.bias|.*running_mean"
    noise = noise if name == "dcgan" else "$^"
    names = assert_same_training(name, tmp_path, "inductor", atol=1e-5, noise=noise)
    assert names
