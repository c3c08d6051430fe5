"""The adversarial pieces and families (``gan``, ``dcgan``, ``wgan_gp``): the losses equal their formulas,
the WGAN-GP penalty equals a hand computation, ``n_critic`` gates the generator, mode coverage on the
eight Gaussians, two-process DDP keeps the ranks identical, bf16 and a clear shape error."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn

from genlight import create_datamodule, create_model
from genlight.datamodules.toy2d import EIGHT_GAUSSIANS_STD, eight_gaussians_centers
from genlight.nn.adversarial import ADVERSARIAL_LOSSES, discriminator_loss, generator_loss, gradient_penalty
from tests.helpers import RecordRank, cpu_trainer, digits_datamodule

REAL = torch.tensor([-2.0, 0.5, 3.0, 0.0])
FAKE = torch.tensor([-1.0, 0.0, 2.5, -4.0])


def _expected(loss: str, r: Tensor, f: Tensor) -> tuple[float, float]:
    """(D loss, G loss) from the papers' formulas, in float64 with sigmoid and log."""
    r, f = r.double(), f.double()
    sr, sf = torch.sigmoid(r), torch.sigmoid(f)
    if loss in ("non_saturating", "minimax"):
        d = (-torch.log(sr)).mean() + (-torch.log(1 - sf)).mean()
        g = (-torch.log(sf)).mean() if loss == "non_saturating" else torch.log(1 - sf).mean()
    elif loss == "hinge":
        d = torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean()
        g = -f.mean()
    elif loss == "lsgan":
        d = 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()
        g = 0.5 * ((f - 1) ** 2).mean()
    else:  # wasserstein_gp
        d = f.mean() - r.mean()
        g = -f.mean()
    return float(d), float(g)


@pytest.mark.parametrize("loss", ADVERSARIAL_LOSSES)
def test_losses_equal_their_formulas(loss: str) -> None:
    d, g = _expected(loss, REAL, FAKE)
    assert float(discriminator_loss(loss, REAL, FAKE)) == pytest.approx(d, rel=1e-6, abs=1e-7)
    assert float(generator_loss(loss, FAKE)) == pytest.approx(g, rel=1e-6, abs=1e-7)


def test_losses_are_fp32_under_bf16_inputs_and_unknown_names_fail() -> None:
    out = discriminator_loss("non_saturating", REAL.bfloat16(), FAKE.bfloat16())
    assert out.dtype == torch.float32
    with pytest.raises(ValueError, match="non_saturating"):
        discriminator_loss("vanilla", REAL, FAKE)
    with pytest.raises(ValueError, match="hinge"):
        generator_loss("bce", FAKE)


def test_non_saturating_gradient_beats_minimax_at_a_rejected_fake() -> None:
    """At a confidently rejected fake (D(G(z)) = σ(-6) ≈ 0.0025) the minimax loss saturates:
    d/dl log(1 - σ(l)) = -σ(l) ≈ -0.0025, while d/dl -log σ(l) = -σ(-l) ≈ -1 (Goodfellow et al. §3)."""
    grads = {}
    for loss in ("non_saturating", "minimax"):
        logit = torch.tensor([-6.0], requires_grad=True)
        generator_loss(loss, logit).backward()
        grads[loss] = float(logit.grad[0])
    assert grads["non_saturating"] == pytest.approx(-torch.sigmoid(torch.tensor(6.0)).item(), rel=1e-5)
    assert grads["minimax"] == pytest.approx(-torch.sigmoid(torch.tensor(-6.0)).item(), rel=1e-5)
    assert abs(grads["non_saturating"]) > 100 * abs(grads["minimax"])  # both push the logit up
    assert grads["non_saturating"] < 0 and grads["minimax"] < 0


class _Linear(nn.Module):
    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.w


def test_gradient_penalty_of_a_linear_critic() -> None:
    """D(x) = w·x has gradient w everywhere, so the penalty is (‖w‖ - 1)² for any interpolate, and its
    gradient with respect to w (create_graph) is 2 (‖w‖ - 1) w / ‖w‖."""
    w = torch.tensor([0.5, -1.0, 2.0, 0.25, 1.5, -0.5, 0.0, 1.0, -2.0, 0.75, 0.1, 0.3])
    critic = _Linear(w)
    real, fake = torch.rand(5, 3, 2, 2), torch.rand(5, 3, 2, 2)
    gp = gradient_penalty(critic, real, fake)
    norm = w.double().norm()
    assert float(gp.detach()) == pytest.approx(float((norm - 1) ** 2), rel=1e-5)
    gp.backward()
    expected = 2 * (norm - 1) * w.double() / norm
    torch.testing.assert_close(critic.w.grad.double(), expected, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_of_a_nonlinear_critic_matches_torch_func() -> None:
    """A small tanh critic: the penalty at the interpolates of a seeded α equals (‖∇D‖ - 1)² averaged,
    with the per-example gradients from torch.func in float64; under bf16 autocast it is the same fp32 value."""
    torch.manual_seed(3)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 1), nn.Flatten(0))
    real, fake = torch.randn(4, 2, 2, 2), torch.randn(4, 2, 2, 2)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(11))
    alpha = torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(11)).double()
    mixed = alpha * real.double() + (1 - alpha) * fake.double()
    critic64 = _double_copy(critic)
    grads = torch.func.vmap(torch.func.grad(lambda x: critic64(x[None])[0]))(mixed)
    expected = ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert float(gp) == pytest.approx(float(expected), rel=1e-5)
    # a central finite difference of D along one coordinate of the first interpolate
    e = torch.zeros_like(mixed[:1])
    e[0, 1, 0, 1] = 1e-6
    fd = (critic64(mixed[:1] + e) - critic64(mixed[:1] - e)) / 2e-6
    assert float(fd[0]) == pytest.approx(float(grads[0, 1, 0, 1]), rel=1e-5, abs=1e-8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp_bf16 = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(11))
    assert gp_bf16.dtype == torch.float32
    assert float(gp_bf16) == pytest.approx(float(gp), rel=1e-6)


def _double_copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).double()


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    """How many times an Adam optimizer stepped (its per-parameter step counter)."""
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


def test_n_critic_gates_the_generator() -> None:
    """n_critic = 3 over 6 batches: 6 discriminator steps, 2 generator steps (after batches 3 and 6)."""
    dm = digits_datamodule(batch_size=16)
    model = create_model("dcgan", image_shape=(1, 8, 8), latent_dim=4, width=4, n_critic=3)
    trainer = cpu_trainer(max_epochs=1, limit_train_batches=6, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    opt_g, opt_d = trainer.optimizers
    assert _adam_steps(opt_d) == 6
    assert _adam_steps(opt_g) == 2
    assert trainer.global_step == 8  # global_step counts optimizer steps of both


def test_wgan_gp_has_the_papers_defaults() -> None:
    model = create_model("wgan_gp")
    hp = model.hparams
    assert (hp.loss, hp.gp_weight, hp.n_critic, hp.lr_g, hp.lr_d, tuple(hp.betas)) == (
        "wasserstein_gp", 10.0, 5, 1e-4, 1e-4, (0.0, 0.9),
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.discriminator.modules())  # per-example penalty
    assert model.discriminator.head.bias is None


def test_dcgan_refuses_a_bad_image_size_naming_the_sizes_that_fit() -> None:
    with pytest.raises(ValueError, match=r"10x10.*sizes that fit: 8, 12, 16"):
        create_model("dcgan", image_shape=(1, 10, 10))
    for size in (8, 16, 28, 32, 64):  # every size the docstring promises builds and generates that size
        model = create_model("dcgan", image_shape=(3, size, size), latent_dim=4, width=2)
        assert model.sample(2).shape == (2, 3, size, size)


def test_wgan_gp_bf16_fit_is_finite() -> None:
    """bf16-mixed autocast with the gradient-penalty path: finite losses, a positive penalty, finite weights."""
    dm = digits_datamodule(batch_size=16)
    model = create_model("wgan_gp", image_shape=(1, 8, 8), latent_dim=4, width=4, n_critic=2)
    trainer = cpu_trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=0, precision="bf16-mixed", log_every_n_steps=1)
    trainer.fit(model, datamodule=dm)
    logged = trainer.callback_metrics
    for name in ("train/d_loss", "train/gp", "train/d_adv", "train/g_loss"):
        assert name in logged and torch.isfinite(logged[name]), name
    assert float(logged["train/gp"]) > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert _adam_steps(trainer.optimizers[0]) == 2 and _adam_steps(trainer.optimizers[1]) == 4


@pytest.mark.slow
def test_gan_covers_the_eight_gaussians() -> None:
    """Seeded MLP GAN on eight_gaussians (radius 2√2, σ = 0.5/√2): 6 s on 1 idle thread, ~30 s on the
    loaded machine. A mode is *covered* when at least 2% of 4000 samples lie within 3σ of its centre; at
    least 7 of the 8 modes must be covered and at least 80% of all samples must lie within 3σ of some mode."""
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    dm = create_datamodule("toy2d", dataset="eight_gaussians", num_samples=20000, batch_size=128)
    model = create_model("gan", image_shape=(2,), hidden=64, layers=2, lr_g=1e-3, lr_d=1e-3)
    from genlight.callbacks.ema import EMA

    trainer = cpu_trainer(max_epochs=10, limit_val_batches=0, callbacks=[EMA()])
    trainer.fit(model, datamodule=dm)
    model.eval()
    with torch.no_grad():
        x = model.sample(4000).double()
    near = torch.cdist(x, eight_gaussians_centers()) < 3 * EIGHT_GAUSSIANS_STD
    per_mode = near.double().mean(dim=0)
    assert int((per_mode >= 0.02).sum()) >= 7, per_mode
    assert float(near.any(dim=1).double().mean()) >= 0.8


@pytest.mark.slow  # ~75 s each on the shared machine: starting the two spawned processes dominates
@pytest.mark.parametrize("family", ["dcgan", "wgan_gp"])
def test_two_process_ddp_keeps_ranks_identical(family: str, tmp_path: Path) -> None:
    """ddp_spawn on 2 CPU processes: the fit runs, setup turned find_unused_parameters on (a G-only
    backward leaves D without gradients), and both ranks end with the same parameters."""
    dm = digits_datamodule(batch_size=16)
    model = create_model(family, image_shape=(1, 8, 8), latent_dim=4, width=4, n_critic=2)
    trainer = cpu_trainer(
        devices=2, strategy="ddp_spawn", max_epochs=1, limit_train_batches=4, limit_val_batches=0,
        callbacks=[RecordRank(str(tmp_path))],
    )  # fmt: skip
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer.fit(model, datamodule=dm)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for r in (r0, r1):
        assert r["find_unused"] and r["world_size"] == 2 and r["steps"] == 6  # 4 D steps + 2 G steps
    assert r0["params"].keys() == r1["params"].keys()
    for k in r0["params"]:
        torch.testing.assert_close(r0["params"][k], r1["params"][k], rtol=0, atol=0, msg=k)
    assert all(not torch.equal(before[k], r0["params"][k]) for k in before), "some parameter never trained"
    assert all(torch.isfinite(v).all() for v in r0["params"].values())


@pytest.mark.parametrize(
    "path", ["examples/toy2d/gan.yaml", "examples/mnist/dcgan.yaml", "examples/cifar10/dcgan.yaml", "examples/celeba/dcgan.yaml"]
)
def test_example_configs_instantiate(path: str, tmp_path: Path) -> None:
    """The examples parse and build their model with the datamodule's shapes linked (no data read)."""
    from genlight.cli import GenlightCLI
    from genlight.registry import MODELS

    root = Path(__file__).resolve().parents[1]
    cli = GenlightCLI(args=["-c", str(root / path), "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"], run=False)
    expected = {"toy2d": (2,), "mnist": (1, 28, 28), "cifar10": (3, 32, 32), "celeba": (3, 64, 64)}[path.split("/")[1]]
    assert tuple(cli.model.hparams["image_shape"]) == expected
    assert MODELS.name_of(cli.model) == Path(path).stem
    assert cli.model.sample(2).shape == (2, *expected)
