"""Pretrained models (genlight/pretrained_models.py, genlight/hub.py): every family round-trips through the
safetensors folder; damaged, foreign or unsafe folders are refused in one line; the Hub round trip works
offline (a mocked upload laid out as a Hub cache, ``HF_HUB_OFFLINE``); the commands take ``--pretrained``."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import genlight
from genlight import list_models
from genlight.cli import GenlightCLI, main
from genlight.errors import CheckpointError, ConfigError
from genlight.pretrained_models import CONFIG_FILE, WEIGHTS_FILE, load_folder, save_pretrained
from genlight.testing import smoke_setup
from tests.helpers import cpu_trainer


@pytest.fixture(scope="module")
def vae_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VAE trained one step on digits, saved as a checkpoint and as a pretrained folder."""
    root = tmp_path_factory.mktemp("pretrained")
    model, dm, _ = smoke_setup("vae", root)
    trainer = cpu_trainer(str(root), max_steps=1, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(root / "vae.ckpt")
    return save_pretrained(model, root / "vae-folder", data="digits", data_args={"batch_size": 32}, figures={"x": 1.0})


@pytest.mark.parametrize("family", list_models())
def test_every_family_round_trips_through_safetensors(family: str, tmp_path: Path) -> None:
    model, _, _ = smoke_setup(family, tmp_path)
    folder = save_pretrained(model, tmp_path / "p")
    loaded = load_folder(folder)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k]) for k in a)
    assert type(loaded) is type(model) and not loaded.training
    assert {p.name for p in folder.iterdir()} == {WEIGHTS_FILE, CONFIG_FILE}


def test_loaded_model_samples_what_the_saved_one_samples(vae_folder: Path) -> None:
    a, b = load_folder(vae_folder), genlight.pretrained(str(vae_folder))
    torch.manual_seed(3)
    x = a.sample(4)
    torch.manual_seed(3)
    assert torch.equal(x, b.sample(4))


def test_damaged_weights_are_refused_by_their_sha256(vae_folder: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(vae_folder, tmp_path / "copy"))
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 1
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256") as info:
        load_folder(folder)
    assert "\n" not in str(info.value)


def test_a_config_naming_an_unregistered_family_or_a_class_path_builds_nothing(vae_folder: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(vae_folder, tmp_path / "copy"))
    config = json.loads((folder / CONFIG_FILE).read_text())
    for family in ("os.system", "genlight.modules.vae.VAE", "not_a_family"):
        (folder / CONFIG_FILE).write_text(json.dumps({**config, "family": family}))
        with pytest.raises(CheckpointError, match="not registered"):
            load_folder(folder)


def test_a_folder_with_only_a_pickle_is_not_unpickled(tmp_path: Path) -> None:
    """A downloaded folder that holds a pickle instead of safetensors: refused before anything is read."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="not a pretrained model"):
        load_folder(tmp_path)
    assert not marker.exists()


def test_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="no pretrained model 'nope'") as info:
        genlight.pretrained("nope")
    assert "hf-hub:user/name" in str(info.value)


class FakeHub:
    """``HfApi`` stand-in: the upload lays the files out as the Hub cache that ``snapshot_download`` reads offline."""

    def __init__(self, cache: Path) -> None:
        self.cache, self.calls = cache, []

    def create_repo(self, repo_id: str, private: bool = False, exist_ok: bool = False) -> None:
        self.calls.append(("create_repo", repo_id, private))

    def upload_folder(self, repo_id: str, folder_path: str, commit_message: str = "") -> str:
        self.calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
        repo = self.cache / f"models--{repo_id.replace('/', '--')}"
        revision = "0" * 40
        shutil.copytree(folder_path, repo / "snapshots" / revision)
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(revision)
        self.card = (Path(folder_path) / "README.md").read_text()
        return f"https://huggingface.co/{repo_id}/commit/{revision}"


def test_push_then_load_from_the_hub_offline(vae_folder: Path, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    from genlight.hub import push_to_hub

    hub = FakeHub(tmp_path / "hub")
    ckpt = vae_folder.parent / "vae.ckpt"
    url = push_to_hub(ckpt, "me/tiny-vae", api=hub, figures={"test_bpd": 2.5}, protocol="p", command="genlight fit")
    assert url.endswith("0" * 40)
    assert hub.calls[0] == ("create_repo", "me/tiny-vae", False)
    assert hub.calls[1] == ("upload_folder", "me/tiny-vae", ["README.md", CONFIG_FILE, WEIGHTS_FILE])
    assert "library_name: genlight" in hub.card and "vae" in hub.card and "digits" in hub.card
    assert "test_bpd" in hub.card and "genlight fit" in hub.card
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = genlight.pretrained("hf-hub:me/tiny-vae")
    original = genlight.load_model(ckpt)
    torch.manual_seed(0)
    x = original.sample(3)
    torch.manual_seed(0)
    assert torch.equal(x, loaded.sample(3))
    with pytest.raises(ConfigError, match="hf-hub:me/other could not be fetched"):
        genlight.pretrained("hf-hub:me/other")


def test_push_command_writes_a_local_folder_with_its_card(vae_folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "card"
    args = ["push", "--ckpt_path", str(vae_folder.parent / "vae.ckpt"), "--repo_id", "me/v", "--local_dir", str(out)]
    with pytest.raises(SystemExit) as done:
        main([*args, "--figure", "fid_train=1.5"])
    assert done.value.code == 0
    assert json.loads((out / CONFIG_FILE).read_text())["figures"] == {"fid_train": 1.5}
    assert "library_name: genlight" in (out / "README.md").read_text()
    with pytest.raises(SystemExit) as done:
        main([*args, "--figure", "fid"])
    assert done.value.code == 1 and "NAME=VALUE" in capsys.readouterr().err


def test_sample_and_test_take_pretrained(vae_folder: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["sample", "--pretrained", str(vae_folder), "-n", "4", "--out", "s.png"])
    assert done.value.code == 0 and (tmp_path / "s.png").is_file()
    with pytest.raises(SystemExit) as done:
        main(["sample", "--pretrained", str(vae_folder), "--ckpt_path", "x.ckpt"])
    assert done.value.code == 1 and "one of them" in capsys.readouterr().err
    main(["test", "--pretrained", str(vae_folder), "--trainer.limit_test_batches", "1"])
    assert "test/bpd_bound" in capsys.readouterr().out


def test_fit_from_pretrained_starts_from_its_weights(vae_folder: Path) -> None:
    cli = GenlightCLI(args=["--pretrained", str(vae_folder), "--trainer.max_steps", "1"], run=False)
    expected = load_folder(vae_folder).state_dict()
    assert all(torch.equal(cli.model.state_dict()[k], v) for k, v in expected.items())
    assert cli.datamodule.batch_size == 32  # the data it was trained with
    with pytest.raises(SystemExit):
        main(["fit", "--pretrained", str(vae_folder), "--ckpt_path", "last"])


SHIPPED = genlight.pretrained()


@pytest.mark.parametrize("entry", SHIPPED, ids=[e.name for e in SHIPPED])
def test_shipped_model_loads_samples_and_gives_its_figure(entry) -> None:
    """Each shipped model loads from the package, samples when it is a sampler, and its figure measured again
    at n = 200 (the same seeded computation as when it shipped) is within 2% of the one it ships with (float
    reordering across thread counts and BLAS builds is all that may move it); `make bench` checks at full n."""
    from benchmarks.pretrained_models import QUICK_N, QUICK_TOLERANCE, figure
    from genlight.types import Sampler

    model = genlight.pretrained(entry.name)
    config = json.loads((genlight.pretrained_models.pretrained_folder(entry.name) / CONFIG_FILE).read_text())
    if isinstance(model, Sampler):
        torch.manual_seed(0)
        assert model.sample(2).shape[0] == 2
    name, value = figure(model, entry.data, config["data"]["init_args"], QUICK_N)
    shipped = entry.figures[f"{name}_n{QUICK_N}"]
    assert abs(value - shipped) <= QUICK_TOLERANCE * abs(shipped), (name, value, shipped)


def test_shipped_models_are_listed_with_their_figures_and_stay_small() -> None:
    assert SHIPPED, "no pretrained model is shipped"
    assert all(e.figures and e.protocol and len(e.sha256) == 64 for e in SHIPPED)
    assert sum(e.size_mb for e in SHIPPED) < 25
