"""The registry: names, globs, errors with close matches, and plug-ins through entry points."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import genlight
import genlight.modules
from genlight.module import GenerativeModule
from genlight.modules.vae import VAE
from genlight.registry import MODELS, Registry, snake_case
from genlight.types import Autoencoder, DensityModel, Sampler


def fresh_registry() -> Registry:
    return Registry("model", "genlight.module.GenerativeModule", "genlight.models", "genlight.modules")


def test_builtins_listed():
    names = genlight.list_models()
    assert {"ae", "vae"} <= set(names)
    assert names == sorted(names)
    assert "digits" in genlight.list_datamodules()


def test_every_family_file_registers_a_model_or_holds_a_base_of_registered_ones():
    """A file under ``genlight/modules/`` holds families, or a family base (adversarial, flow,
    autoregressive) that registered families subclass: no dead file, no family in a private module."""
    registered = [MODELS.get(n) for n in MODELS.list()]
    registered_modules = {cls.__module__ for cls in registered}
    base_modules = {base.__module__ for cls in registered for base in cls.__mro__[1:]}
    for info in pkgutil.iter_modules(genlight.modules.__path__):
        assert not info.name.startswith("_"), "jsonargparse skips private modules; no family may live in one"
        module = f"genlight.modules.{info.name}"
        assert module in registered_modules | base_modules, f"{info.name}.py registers no model and holds no base"


def test_glob_exclude_and_capability_filters():
    assert genlight.list_models("va*") == ["vae"]
    assert genlight.list_models("v*") == ["vae", "vqvae"]
    assert "vae" not in genlight.list_models(exclude="*vae*")
    assert "ae" in genlight.list_models(["a*", "v*"])
    assert "vae" in genlight.list_models(capability=Sampler)
    assert "ae" not in genlight.list_models(capability=Sampler)
    assert "ae" in genlight.list_models(capability=Autoencoder)
    assert "vae" in genlight.list_models(capability=DensityModel)


def test_names_resolve_from_alias_and_class_name():
    reg = fresh_registry()

    class ToyVAE(VAE):
        pass

    reg.add(ToyVAE, aliases=["toy"], tags=["test"])
    assert reg.get("toy_vae") is ToyVAE
    assert reg.get("toy") is ToyVAE
    assert reg.get("ToyVAE") is ToyVAE
    assert reg.list(tag="test") == ["toy_vae"]
    assert reg.name_of(ToyVAE) == "toy_vae"
    assert reg.class_path("toy").endswith("ToyVAE")
    assert "toy" in reg and "nope" not in reg


def test_snake_case():
    assert snake_case("BetaVAE") == "beta_vae"
    assert snake_case("VAE") == "vae"
    assert snake_case("PixelCNN") == "pixel_cnn"
    assert snake_case("WGANGP") == "wgangp"


def test_duplicate_name_raises():
    reg = fresh_registry()

    class A(GenerativeModule):
        pass

    class B(GenerativeModule):
        pass

    reg.add(A, "same")
    reg.add(A, "same")  # re-registering the same class (a re-import) is fine
    with pytest.raises(ValueError, match="already taken"):
        reg.add(B, "same")


def test_bad_registrations_raise():
    reg = fresh_registry()
    with pytest.raises(ValueError, match="snake_case"):
        reg.add(VAE, "Bad-Name")
    with pytest.raises(TypeError, match="subclasses genlight.module.GenerativeModule"):
        reg.add(dict, "not_a_model")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a factory"):
        reg.register("factory")(lambda: VAE())  # type: ignore[arg-type]


def test_unknown_name_lists_close_matches():
    with pytest.raises(KeyError, match="Did you mean: vae"):
        genlight.create_model("vea")
    with pytest.raises(KeyError, match="Did you mean: digits"):
        genlight.create_datamodule("digit")


def test_create_drops_none_kwargs():
    model = genlight.create_model("vae", latent_dim=None, hidden_channels=8)
    assert model.hparams.latent_dim == 16 and model.hparams.hidden_channels == 8


PLUGIN = textwrap.dedent(
    '''
    from genlight.modules.vae import VAE

    class TinyPluginVAE(VAE):
        """A downstream subclass registered only through an entry point."""
    '''
)


@pytest.fixture
def plugin_dir(tmp_path):
    """A package plus a fake installed distribution whose entry point names it."""
    (tmp_path / "myplugin").mkdir()
    (tmp_path / "myplugin" / "__init__.py").write_text("")
    (tmp_path / "myplugin" / "models.py").write_text(PLUGIN)
    (tmp_path / "myplugin" / "broken.py").write_text("raise ImportError('missing dependency xyz')\n")
    dist = tmp_path / "myplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[genlight.models]\ntiny_plugin_vae = myplugin.models:TinyPluginVAE\nbroken = myplugin.broken:Nope\n"
    )
    return tmp_path


def test_entry_point_plugin_is_registered(plugin_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_dir))
    reg = fresh_registry()
    with pytest.warns(UserWarning, match="skipped model plug-in 'broken'.*missing dependency xyz"):
        names = reg.list()
    assert "tiny_plugin_vae" in names  # (built-ins are already imported, so they stay in MODELS)
    assert reg.get("tiny_plugin_vae").__module__ == "myplugin.models"


# One fresh interpreter (the plug-in must be found at start-up, as by the `genlight` console script, whose
# entry is genlight.cli:main) runs `genlight list models`, then `genlight fit`.
PLUGIN_CLI = """
import sys
from genlight.cli import main
try:
    main(["list", "models"])
except SystemExit as exit:
    assert not exit.code, exit.code
print("=== fit ===", flush=True)
main(sys.argv[1:])
"""


def test_entry_point_plugin_trains_through_the_cli(plugin_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(Path.cwd())])}
    fit = subprocess.run(
        [sys.executable, "-c", PLUGIN_CLI, "fit", "--model", "tiny_plugin_vae", "--data", "digits",
         "--model.hidden_channels", "4", "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false"],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    listed = fit.stdout.split("=== fit ===")[0]
    assert "tiny_plugin_vae" in listed and "myplugin.models.TinyPluginVAE" in listed
    config = (tmp_path / "runs" / "tiny_plugin_vae" / "version_0" / "config.yaml").read_text()
    assert "class_path: myplugin.models.TinyPluginVAE" in config


def test_import_genlight_is_enough_for_subpackages():
    import subprocess
    import sys

    code = "import genlight; print(genlight.metrics.list_extractors(), genlight.types.Sampler.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "digits" in out and "Sampler" in out


def test_capability_filter_sees_attributes_set_in_init():
    """A family that sets ``log_prob_is_exact`` / ``num_classes`` in ``__init__`` (not on the class)
    is listed under DensityModel / ConditionalSampler; one that lacks the method is not."""
    from torch import Tensor

    from genlight.module import GenerativeModule
    from genlight.types import ConditionalSampler, DensityModel

    class InitDensity(GenerativeModule):
        def __init__(self, exact: bool = True) -> None:
            super().__init__()
            self.log_prob_is_exact = exact
            self.num_classes = 3

        def log_prob(self, x: Tensor) -> Tensor: ...

        def sample(self, n: int, *, y: Tensor | None = None) -> Tensor: ...

    class NoMethods(GenerativeModule):
        def __init__(self) -> None:
            super().__init__()
            self.log_prob_is_exact = True

    registry = fresh_registry()
    registry.add(InitDensity, "init_density")
    registry.add(NoMethods, "no_methods")
    assert "init_density" in registry.list(capability=DensityModel)
    assert "init_density" in registry.list(capability=ConditionalSampler)
    assert "no_methods" not in registry.list(capability=DensityModel)



def test_create_model_links_shapes_from_a_datamodule(tmp_path):
    """``create_model(name, datamodule=dm)`` links what the CLI links, only what the model takes, and
    explicit arguments win: a VAE built for 28x28 MNIST trains on its batches (without the link it was
    built for the 8x8 default and failed with a matmul error)."""
    from genlight.registry import DATAMODULES
    from tests.fakedata import write_mnist

    write_mnist(tmp_path)
    dm = DATAMODULES.get("mnist").smoke(tmp_path, data_dir=str(tmp_path))
    dm.setup("fit")
    model = genlight.create_model("vae", datamodule=dm, latent_dim=4, hidden_channels=8)
    assert tuple(model.hparams.image_shape) == (1, 28, 28) and model.hparams.num_levels == 256
    x, _ = next(iter(dm.train_dataloader()))
    assert model.training_step((x, _), 0).isfinite()
    assert "num_classes" not in model.hparams  # the VAE takes no labels: nothing else is linked
    explicit = genlight.create_model("vae", datamodule=dm, num_levels=17, latent_dim=4, hidden_channels=8)
    assert explicit.hparams.num_levels == 17  # explicit kwargs win

    class Shapes:  # any object with the attributes will do
        image_shape, num_classes, num_levels = (1, 16, 16), 10, 2

    cgan = genlight.create_model("cgan", datamodule=Shapes(), latent_dim=4, width=4)
    assert cgan.num_classes == 10 and tuple(cgan.image_shape) == (1, 16, 16)


def _fake_entry_points(monkeypatch, *specs: tuple[str, str]) -> None:
    from importlib import metadata

    import genlight.registry as registry

    points = [metadata.EntryPoint(name, value, "genlight.models") for name, value in specs]
    monkeypatch.setattr(registry, "_entry_points", lambda group: points if group == "genlight.models" else [])


def test_decorator_and_entry_point_names_both_answer(monkeypatch):
    """A class its decorator registered as ``vae`` and an entry point names ``my_vae``: both names
    resolve to it (the entry-point name an alias), it is listed once, and nothing is dropped."""
    reg = fresh_registry()
    reg.add(VAE, "vae", tags=("latent",))  # what the decorator did when the entry point's import ran it
    _fake_entry_points(monkeypatch, ("my_vae", "genlight.modules.vae:VAE"), ("vae", "genlight.modules.vae:VAE"))
    assert reg.list() == ["vae"]
    assert reg.get("my_vae") is VAE and reg.resolve("my_vae") == "vae" and "my_vae" in reg
    assert reg.aliases("vae") == ["my_vae"] and reg.list(tag="latent") == ["vae"]
    assert reg.class_path("my_vae") == "genlight.modules.vae.VAE"


def test_an_entry_point_name_held_by_another_class_is_refused_in_one_line(monkeypatch):
    from genlight.modules.autoencoder import AE

    reg = fresh_registry()
    reg.add(VAE, "vae")
    reg.add(AE, "ae")
    _fake_entry_points(monkeypatch, ("ae", "genlight.modules.vae:VAE"))
    with pytest.warns(UserWarning) as record:
        reg.list()
    (message,) = [str(w.message) for w in record]
    assert "\n" not in message
    assert "skipped model plug-in 'ae'" in message and "already taken by genlight.modules.autoencoder.AE" in message
    assert reg.get("ae") is AE and reg.aliases("vae") == []
