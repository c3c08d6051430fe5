"""The `genlight` command as a new user meets it: every mistake is `genlight: error: ...` in at most
three lines before any training step, exits non-zero, and removes nothing already written.

One test per case of issue #8 (see the table in the README's CLI section)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from torch import Tensor

from genlight import load_model
from genlight.cli import GenlightCLI, main
from genlight.modules.vae import VAE

QUICK = ["--data.subset", "64", "--trainer.enable_model_summary", "false"]
TINY_VAE = ["--model", "vae", "--model.hidden_channels", "8", "--model.latent_dim", "4"]


# ---------------------------------------------------------------------------- helpers
def run(capsys, *args: str) -> tuple[int, str, str]:
    """``genlight ARGS`` in-process: (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exit_info:
        code = exit_info.code if isinstance(exit_info.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def error_lines(err: str) -> list[str]:
    """The message from its `genlight: error:` line on."""
    lines = err.rstrip("\n").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("genlight: error: "))
    return lines[start:]


def assert_user_error(code: int, err: str, *needles: str, exit_code: int | None = None, strict: bool = True) -> str:
    """Non-zero exit, no traceback or usage dump, a message of at most 3 lines naming the problem and
    the fix (``needles``); ``strict``: nothing else on stderr either (errors raised before Lightning's
    Trainer exists; later ones follow Lightning's own "GPU available" lines)."""
    assert code != 0 and (exit_code is None or code == exit_code), (code, err)
    assert "Traceback" not in err and "usage:" not in err, err
    lines = error_lines(err)
    assert 1 <= len(lines) <= 3, lines
    if strict:
        assert len(err.rstrip("\n").splitlines()) <= 3, err
    text = "\n".join(lines)
    for needle in needles:
        assert needle in text, (needle, text)
    return text


def snapshot(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size: what must survive a failed command."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def assert_kept(before: dict[str, int], root: Path) -> None:
    after = snapshot(root)
    missing = [k for k in before if k not in after]
    assert not missing, missing
    changed = [k for k in before if k.endswith(".ckpt") and after[k] != before[k]]
    assert not changed, changed


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder after `genlight fit --model vae` and `genlight fit --model ae` (tiny, one epoch)."""
    root = tmp_path_factory.mktemp("trained")
    cwd = Path.cwd()
    import os

    os.chdir(root)
    try:
        main(["fit", *TINY_VAE, "--trainer.max_epochs", "1", *QUICK, "--trainer.logger.init_args.name", "lightning_logs"])
        main(["fit", "--model", "ae", "--model.hidden_channels", "8", "--trainer.max_epochs", "1", *QUICK])
    finally:
        os.chdir(cwd)
    return root


def private_copy(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the folder ``trained`` as the working directory (the ``workdir`` fixtures)."""
    work = tmp_path / "work"
    shutil.copytree(trained, work)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def workdir(trained, tmp_path, monkeypatch) -> Path:
    """A private copy of ``trained`` as the working directory."""
    return private_copy(trained, tmp_path, monkeypatch)


VAE_LAST = "runs/vae/version_0/checkpoints/last.ckpt"
AE_LAST = "runs/ae/version_0/checkpoints/last.ckpt"


# ---------------------------------------------------------------------------- checkpoints by default
def test_fit_writes_last_and_best_checkpoints(workdir):
    names = sorted(p.name for p in (workdir / "runs/vae/version_0/checkpoints").iterdir())
    assert "last.ckpt" in names and any(n.startswith("best-") for n in names)
    best = next(n for n in names if n.startswith("best-"))
    ckpt = torch.load(workdir / "runs/vae/version_0/checkpoints" / best, weights_only=False)
    monitor = next(v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))["monitor"]
    assert monitor == "val/bpd_bound"  # the family's own checkpoint_monitor()
    assert (workdir / AE_LAST).is_file()


def test_readme_commands_after_a_plain_fit(workdir, capsys):
    """The README's commands, in the order written, after `genlight fit --model vae`."""
    code, out, _ = run(capsys, "test", *TINY_VAE, "--data", "digits", "--ckpt_path", VAE_LAST, *QUICK)
    assert code == 0 and "test/nelbo" in out
    code, out, _ = run(capsys, "sample", "--ckpt_path", VAE_LAST, "-n", "64", "--out", "samples.png")
    assert code == 0 and (workdir / "samples.png").stat().st_size > 100
    model = load_model(VAE_LAST)
    assert type(model) is VAE and model.sample(4).shape == (4, 1, 8, 8)
    code, out, err = run(capsys, "test", "--model", "vae", "--ckpt_path", "last", *QUICK)
    assert code == 0 and f"using {VAE_LAST}" in err and "test/nelbo" in out
    code, out, _ = run(capsys, "list", "extractors")
    assert code == 0 and out.startswith("digits") and "inception" in out


# ---------------------------------------------------------------------------- resume by `last`
def test_fit_ckpt_path_last_resumes_the_newest_run(workdir, capsys):
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", *TINY_VAE, "--ckpt_path", "last", "--trainer.max_epochs", "2", *QUICK)
    assert code == 0 and f"resuming from {VAE_LAST}" in err
    resumed = torch.load(workdir / "runs/vae/version_1/checkpoints/last.ckpt", weights_only=False)
    first = torch.load(workdir / VAE_LAST, weights_only=False)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 2 * first["global_step"]
    assert_kept(before, workdir)


def test_ckpt_path_last_without_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "test", "--model", "vae", "--ckpt_path", "last")
    assert_user_error(code, err, "no runs/vae/version_*/checkpoints/last.ckpt", "genlight fit --model vae")


# ---------------------------------------------------------------------------- checkpoint files
def test_missing_checkpoint(workdir, capsys):
    code, _, err = run(capsys, "test", "--model", "vae", "--ckpt_path", "runs/vae/nope.ckpt")
    assert_user_error(code, err, "runs/vae/nope.ckpt does not exist", "last.ckpt")


def test_truncated_checkpoint(workdir, capsys):
    broken = workdir / "broken.ckpt"
    broken.write_bytes((workdir / VAE_LAST).read_bytes()[:2000])
    before = snapshot(workdir)
    for args in (["test", "--model", "vae", "--ckpt_path", str(broken)], ["sample", "--ckpt_path", str(broken)],
                 ["fit", "--model", "vae", "--ckpt_path", str(broken)]):  # fmt: skip
        code, _, err = run(capsys, *args)
        assert_user_error(code, err, "broken.ckpt cannot be read", "truncated or corrupted")
    assert_kept(before, workdir)


def test_foreign_checkpoint(workdir, capsys):
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {}}, workdir / "other.ckpt")
    code, _, err = run(capsys, "sample", "--ckpt_path", "other.ckpt")
    assert_user_error(code, err, "other.ckpt was not written by genlight", "load_from_checkpoint")
    torch.save([1, 2, 3], workdir / "list.ckpt")
    code, _, err = run(capsys, "test", "--model", "vae", "--ckpt_path", "list.ckpt")
    assert_user_error(code, err, "list.ckpt is not a Lightning checkpoint")


@pytest.mark.parametrize("command", ["test", "validate", "sample"])
def test_checkpoint_of_another_family(workdir, capsys, command):
    before = snapshot(workdir)
    code, _, err = run(capsys, command, "--model", "vae", "--ckpt_path", AE_LAST)
    assert_user_error(code, err, "holds model 'ae'", "not 'vae'", "--model ae")
    assert_kept(before, workdir)


def test_model_arguments_that_contradict_the_checkpoint(workdir, capsys):
    code, _, err = run(capsys, "test", "--model", "vae", "--ckpt_path", VAE_LAST, "--model.latent_dim", "3")
    assert_user_error(code, err, "latent_dim=3 (checkpoint: 4)", "drop them")
    # agreeing arguments (and defaults the checkpoint overrides) are fine
    cli = GenlightCLI(args=["test", "--model", "vae", "--ckpt_path", VAE_LAST, "--model.latent_dim", "4",
                            "--trainer.logger", "false", *QUICK])  # fmt: skip
    assert cli.model.hparams.latent_dim == 4 and cli.model.hparams.hidden_channels == 8


# ---------------------------------------------------------------------------- settings checked before training
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--data.batch_size", "-5"], ["--data.batch_size must be an integer >= 1, got -5"]),
        (["--data.val_fraction", "1.5"], ["--data.val_fraction must be a number in [0, 1), got 1.5"]),
        (["--data.subset", "0"], ["--data.subset must be an integer >= 1, got 0"]),
        (["--samples.num_samples", "0"], ["--samples.num_samples must be an integer >= 1, got 0"]),
        (["--trainer.callbacks+=EMA", "--trainer.callbacks.decay", "1.5"],
         ["--trainer.callbacks.decay must be a number in [0, 1), got 1.5"]),
        (["--model.latent_dim", "0"], ["--model.latent_dim must be an integer in [1, 4096], got 0"]),
        (["--model.lr=-0.001"], ["--model.lr must be a number > 0, got -0.001"]),
        (["--trainer.callbacks+=FIDCallback", "--trainer.callbacks.metrics", "[fdi]"], ["unknown metrics ['fdi']"]),
        (["--trainer.devices", "0"], ["invalid Trainer settings", "--trainer.devices"]),
        (["--trainer.accelerator", "gpu"], ["invalid Trainer settings", "--trainer.accelerator"]),
    ],
)
def test_bad_settings_fail_before_training(workdir, capsys, args, needles):
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", "--model", "vae", *QUICK, *args)
    assert_user_error(code, err, *needles, strict="--trainer" not in args[0])
    assert "Epoch" not in err
    assert_kept(before, workdir)
    assert not (workdir / "runs/vae/version_1").exists()


def test_sample_needs_at_least_one_image(workdir, capsys):
    code, _, err = run(capsys, "sample", "--ckpt_path", VAE_LAST, "-n", "0")
    assert_user_error(code, err, "-n/--num_samples: must be >= 1")


def test_sample_labels_on_an_unconditional_model(workdir, capsys):
    code, _, err = run(capsys, "sample", "--ckpt_path", VAE_LAST, "--labels", "3")
    assert_user_error(code, err, "VAE is unconditional", "drop --labels")


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--trainer.callbacks.extractor", "incepton"], ["unknown extractor 'incepton'", "inception", "genlight list extractors"]),
        (["--trainer.callbacks.extractor", "mnist", "--trainer.callbacks.weights_path", "nowhere/mnist_cnn.pt"],
         ["cannot build the 'mnist' extractor", "nowhere/mnist_cnn.pt"]),
        (["--trainer.callbacks.extractor", "inception", "--trainer.callbacks.weights_path", "missing.pth"],
         ["cannot build the 'inception' extractor", "missing.pth"]),
    ],
)  # fmt: skip
def test_fid_callback_settings_fail_before_training(workdir, capsys, extra, needles):
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", *TINY_VAE, "--trainer.callbacks+=FIDCallback", *extra, *QUICK)
    assert_user_error(code, err, *needles, strict=False)
    assert_kept(before, workdir)
    assert not list((workdir / "runs/vae").glob("version_1/checkpoints/*.ckpt"))


def test_fid_digits_extractor_on_color_images(workdir, capsys):
    from tests.fakedata import write_cifar10

    write_cifar10(workdir / "data")
    code, _, err = run(capsys, "fit", *TINY_VAE, "--data", "cifar10", "--data.data_dir", "data", "--data.check_md5", "false",
                       "--trainer.callbacks+=FIDCallback", "--trainer.callbacks.extractor", "digits", *QUICK)  # fmt: skip
    assert_user_error(code, err, "'digits' extractor takes 1x8x8 images, the data are 3x32x32", "extractor=inception",
                      strict=False)


def test_tensorboard_logger_without_the_package(workdir, capsys, monkeypatch):
    import genlight.cli.checks

    monkeypatch.setattr(genlight.cli.checks, "tensorboard_available", lambda: False)
    code, _, err = run(capsys, "fit", "--model", "vae", "--trainer.logger", "TensorBoardLogger", *QUICK)
    assert_user_error(code, err, "pip install 'genlight[tensorboard]'")


def test_tensorboard_logger_works(workdir, capsys):
    pytest.importorskip("tensorboard")
    code, _, _ = run(capsys, "fit", *TINY_VAE, "--trainer.logger", "TensorBoardLogger", "--trainer.max_epochs", "1", *QUICK)
    assert code == 0
    run_dir = workdir / "runs/vae/version_1"
    assert list(run_dir.glob("events.out.tfevents.*")) and (run_dir / "checkpoints/last.ckpt").is_file()


def test_predict_points_at_sample(workdir, capsys):
    code, _, err = run(capsys, "predict", "--model", "vae", "--ckpt_path", VAE_LAST)
    assert_user_error(code, err, "genlight sample --ckpt_path", exit_code=2)


# ---------------------------------------------------------------------------- misspelt options
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--model", "vae", "--model.latnt_dim", "3"], ["no option --model.latnt_dim", "Did you mean: --model.latent_dim?"]),
        (["--model", "vae", "--data.batch_sise", "3"], ["no option --data.batch_sise", "--data.batch_size"]),
        (["--model", "vae", "--trainer.max_epohcs", "3"], ["unknown option --trainer.max_epohcs", "--trainer.max_epochs"]),
        (["--modle", "vae"], ["unknown option --modle", "--model"]),
        (["--model", "vae", "--data.batch_size", "abc"], ["--data.batch_size must be an integer >= 1, got abc", "`genlight fit --data.help digits` lists its options"]),
        (["--model", "vae", "--model.likelihood", "foo"], ["--model.likelihood: Expected a typing.Literal['auto'"]),
        (["-c", "nonexist.yaml"], ["--config: File does not exist", "nonexist.yaml"]),
    ],
)  # fmt: skip
def test_misspelt_option_did_you_mean(tmp_path, monkeypatch, capsys, args, needles):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "fit", *args)
    assert_user_error(code, err, *needles, exit_code=2)


@pytest.mark.parametrize(("args", "needle"), [([], "no command given"), (["fitt"], "Did you mean: fit?")])
def test_unknown_or_missing_command(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *args)
    assert_user_error(code, err, needle, "fit, validate, test, sample, score, translate, complete, list", exit_code=2)


def test_missing_model_says_how_to_name_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "fit")
    assert_user_error(code, err, "missing --model", "genlight list models")


def test_messages_name_only_registered_families():
    """No error message names a family that is not registered: every family name of the taxonomy that
    appears in the text of a ``raise`` anywhere in genlight must be in the registry."""
    import ast
    import re
    from pathlib import Path

    import genlight
    from genlight import list_models

    vae = VAE(latent_dim=2, hidden_channels=4)
    with pytest.raises(ValueError) as info:
        vae.sample(2, y=torch.zeros(2, dtype=torch.long))
    assert "genlight list models" in str(info.value)

    taxonomy = {"ae", "vae", "beta_vae", "cvae", "aae", "gan", "dcgan", "wgan_gp", "cgan", "infogan", "cyclegan",
                "nade", "pixelcnn", "gated_pixelcnn", "pixelrnn_row", "pixelrnn_diag", "realnvp", "glow", "ddpm",
                "ebm", "flow", "flows"}  # fmt: skip
    registered = set(list_models())
    named: dict[str, str] = {}
    for path in Path(genlight.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = " ".join(c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant) and isinstance(c.value, str))
                for word in set(re.findall(r"\b[a-z][a-z0-9_]*\b", text)) & taxonomy:
                    named.setdefault(word, f"{path.name}:{node.lineno}")
    unregistered = {w: where for w, where in named.items() if w not in registered}
    assert not unregistered, f"messages name families that are not registered: {unregistered}"


# ---------------------------------------------------------------------------- NaN guard
class NaNAfterFirstEpochVAE(VAE):
    """A VAE whose loss turns NaN in its second epoch (test-only; importable for the CLI)."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.current_epoch >= 1 else loss


def test_nan_loss_stops_with_one_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = f"{__name__}.NaNAfterFirstEpochVAE"
    code, _, err = run(capsys, "fit", "--model", path, "--model.hidden_channels", "8", "--trainer.max_epochs", "3",
                       "--trainer.logger.init_args.name", "nan", *QUICK)  # fmt: skip
    text = assert_user_error(code, err, "loss (returned by training_step) is NaN at step", "epoch 1, batch 0",
                             "the last good checkpoint is kept", "--model.lr", exit_code=1, strict=False)  # fmt: skip
    last = tmp_path / "runs/nan/version_0/checkpoints/last.ckpt"
    assert str(last.relative_to(tmp_path)) in text
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["epoch"] == 0 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


@pytest.mark.parametrize("name", __import__("genlight").list_models())
def test_nan_guard_stops_every_family(name, tmp_path):
    """Weights set to NaN before a batch: the guard stops that batch, whatever the family logs or returns."""
    import lightning.pytorch as pl

    from genlight.callbacks.nan_guard import NaNGuard
    from genlight.errors import NonFiniteLossError
    from tests.helpers import cpu_trainer, smoke_setup

    class Poison(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 2:
                with torch.no_grad():
                    for p in pl_module.parameters():
                        p.fill_(float("nan"))

    model, dm, kwargs = smoke_setup(name, tmp_path)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_val_batches=0, callbacks=[Poison(), NaNGuard()], **kwargs)
    with pytest.raises(NonFiniteLossError, match=r"is NaN at step \d+ \(epoch 0, batch 2\)"):
        trainer.fit(model, datamodule=dm)


# ---------------------------------------------------------------------------- registry names in YAML
@pytest.mark.parametrize(
    "config",
    [
        {"model": "vae", "data": "digits"},
        {"model": {"class_path": "vae", "init_args": {"latent_dim": 3}}, "data": {"class_path": "digits"}},
        {"fit": {"model": "vae", "data": "digits"}},
    ],
)
def test_registry_names_in_yaml(tmp_path, monkeypatch, capsys, config):
    """`model: vae`, `class_path: vae` and a subcommand-keyed config work as `--model vae` does."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    args = ["-c", "cfg.yaml", "fit"] if "fit" in config else ["fit", "-c", "cfg.yaml"]
    code, out, err = run(capsys, *args, "--print_config")
    assert code == 0, err
    printed = yaml.safe_load(out)
    assert printed["model"]["class_path"] == "genlight.modules.vae.VAE"
    assert printed["data"]["class_path"] == "genlight.datamodules.digits.DigitsDataModule"
    if isinstance(config.get("model"), dict):
        assert printed["model"]["init_args"]["latent_dim"] == 3
    if "fit" not in config:
        cli = GenlightCLI(args=["-c", "cfg.yaml"], run=False)
        assert type(cli.model) is VAE


def test_model_given_in_a_config_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({"class_path": "vae", "init_args": {"latent_dim": 5}}))
    cli = GenlightCLI(args=["--model", "model.yaml"], run=False)
    assert type(cli.model) is VAE and cli.model.hparams.latent_dim == 5
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"model": "vea"}))
    code, _, err = run(capsys, "fit", "-c", "bad.yaml")
    assert_user_error(code, err, "unknown model 'vea'", "Did you mean: vae", exit_code=2)


# ---------------------------------------------------------------------------- run folders and output
def test_fast_dev_run_writes_images_inside_a_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, "fit", *TINY_VAE, "--trainer.fast_dev_run", "1", *QUICK)
    assert code == 0
    assert list((tmp_path / "runs/vae/version_0/images").glob("samples_*.png"))
    assert not (tmp_path / "runs/images").exists()


def test_no_progress_bar_when_output_is_not_a_terminal():
    cli = GenlightCLI(args=["--model", "vae"], run=False)  # pytest captures stderr: not a terminal
    assert cli.trainer.progress_bar_callback is None
    cli = GenlightCLI(args=["--model", "vae", "--trainer.enable_progress_bar", "true"], run=False)
    assert cli.trainer.progress_bar_callback is not None


# ---------------------------------------------------------------------------- the README, as written
ROOT = Path(__file__).resolve().parents[1]
FEW_BATCHES = ["--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0"]


def readme_cli_commands() -> list[list[str]]:
    """The `genlight ...` lines of the first code block of the README's CLI section, in order."""
    import shlex

    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The CLI"):]
    block = section[section.index("```bash") + 7: section.index("```", section.index("```bash") + 7)]
    return [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.startswith("genlight ")]


def test_readme_cli_block_runs_in_order(tmp_path, monkeypatch, capsys):
    """Every command of the README's CLI block, in the order written, after `genlight fit --model vae`
    (fits shortened to one or two epochs on 64 images), then the README's `load_model` line."""
    monkeypatch.chdir(tmp_path)
    commands = readme_cli_commands()
    assert len(commands) >= 10
    code, _, err = run(capsys, "fit", "--model", "vae", "--trainer.max_epochs", "1", *QUICK)
    assert code == 0, err
    for words in commands:
        args = [str(ROOT / w) if w.startswith("examples/") else w for w in words[1:]]
        redirect = None
        if ">" in args:
            redirect = args[args.index(">") + 1]
            args = args[: args.index(">")]
        if args[0] == "fit" and "--print_config" not in args and not any(a.endswith(".help") for a in args):
            epochs = "2" if "last" in args else "1"
            args += ["--trainer.max_epochs", epochs, *QUICK, *FEW_BATCHES]
        if args[0] == "test":
            args += [*QUICK, "--trainer.limit_test_batches", "1"]
        code, out, err = run(capsys, *args)
        assert code == 0, (words, err[-2000:])
        if redirect:
            (tmp_path / redirect).write_text(out)
    assert yaml.safe_load((tmp_path / "my.yaml").read_text())["model"]["class_path"] == "genlight.modules.vae.VAE"
    assert (tmp_path / "samples.png").stat().st_size > 100
    model = load_model("runs/vae/version_0/checkpoints/last.ckpt")  # the README's "From Python" line
    assert model.sample(64).shape == (64, 1, 8, 8)


def test_model_compile_points_to_the_compile_callback(capsys) -> None:
    """``torch.compile`` is a callback for every family, not a model option: ``--model.compile`` says so."""
    code, _, err = run(capsys, "fit", "--model", "vae", "--data", "digits", "--model.compile", "true")
    assert_user_error(code, err, "VAE has no option --model.compile", "--trainer.callbacks+=Compile")
