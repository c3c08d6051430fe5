"""InfoGAN: the Q losses against hand formulas (no double softmax; Gaussian NLL with a predicted σ), where
the MI term's gradients go, the parameter grouping, the seeded code-traversal grid and its callback,
and that a short run makes the categorical code recoverable (and, slow, aligned with digit class)."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F

from genlight import create_model
from genlight.callbacks import CodeTraversal
from genlight.callbacks.ema import EMA
from genlight.callbacks.traversal import traversal_grid
from genlight.modules.infogan import categorical_info_loss, gaussian_info_nll
from tests.helpers import cpu_trainer, digits_datamodule, tiny_vae


def small(**kwargs):
    return create_model("infogan", **{"noise_dim": 8, "width": 8, "q_hidden": 16, **kwargs})


def test_latent_layout_and_prior():
    model = small(categories=[10, 3], num_continuous=2)
    assert model.latent_dim == 8 + 13 + 2
    z = model.sample_latent(4000)
    noise, cats, cont = model.split_latent(z)
    assert z.shape == (4000, 23) and noise.shape == (4000, 8) and cont.shape == (4000, 2)
    assert torch.equal(z[:, 8:18].sum(1), torch.ones(4000)) and torch.equal(z[:, 18:21].sum(1), torch.ones(4000))
    assert set(cats[0].tolist()) == set(range(10)) and set(cats[1].tolist()) == set(range(3))
    assert cont.min() >= -1 and cont.max() <= 1 and cont.min() < -0.95 and cont.max() > 0.95  # U(-1, 1)
    assert abs(float(noise.std()) - 1.0) < 0.05
    assert torch.equal(model.make_latent(noise, cats, cont), z)


def test_categorical_q_loss_is_cross_entropy_on_raw_logits():
    model = small()
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    features = model.discriminator.features(x)
    q = model.q_head(features)
    raw = model.q_head.net(features)[:, :10]  # the head's linear output: no softmax layer in front of the loss
    assert torch.allclose(q["logits"][0], raw)
    codes = torch.randint(10, (6,))
    hand = -(raw - raw.exp().sum(1, keepdim=True).log()).gather(1, codes[:, None]).mean()
    assert torch.allclose(categorical_info_loss(q["logits"][0], codes), hand, atol=1e-6)
    z = model.make_latent(torch.zeros(6, 8), [codes], torch.zeros(6, 2))
    terms = model.mutual_information_terms(q, z)
    assert torch.allclose(terms["cat"], model.hparams.lambda_cat * hand, atol=1e-6)
    # a double softmax (softmax layer, then cross-entropy) gives a different, flattened loss
    logits = torch.tensor([[4.0, 0.0, -2.0]])
    double = F.cross_entropy(logits.softmax(1), torch.tensor([0]))
    assert not torch.allclose(categorical_info_loss(logits, torch.tensor([0])), double, atol=1e-2)


def test_continuous_q_loss_is_gaussian_nll_with_predicted_sigma():
    mean = torch.tensor([[0.5, -0.2], [0.0, 0.9]])
    log_sigma = torch.tensor([[-1.0, 0.3], [0.0, -2.0]])
    codes = torch.tensor([[0.7, 0.1], [-0.5, 0.95]])
    sigma = log_sigma.exp()
    hand = (torch.log(sigma) + 0.5 * math.log(2 * math.pi) + (codes - mean) ** 2 / (2 * sigma**2)).sum(1).mean()
    assert torch.allclose(gaussian_info_nll(mean, log_sigma, codes), hand, atol=1e-6)
    ref = -torch.distributions.Normal(mean, sigma).log_prob(codes).sum(1).mean()
    assert torch.allclose(gaussian_info_nll(mean, log_sigma, codes), ref, atol=1e-6)
    # not a fixed-variance MSE: σ changes the loss
    assert not torch.allclose(gaussian_info_nll(mean, log_sigma, codes), gaussian_info_nll(mean, 0 * log_sigma, codes))

    model = small()
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    q = model.q(x)
    cont = torch.rand(5, 2) * 2 - 1
    z = model.make_latent(torch.zeros(5, 8), [torch.zeros(5, dtype=torch.long)], cont)
    s = q["log_sigma"].exp()
    hand = (q["log_sigma"] + 0.5 * math.log(2 * math.pi) + (cont - q["mean"]) ** 2 / (2 * s**2)).sum(1).mean()
    assert torch.allclose(model.mutual_information_terms(q, z)["con"], model.hparams.lambda_con * hand, atol=1e-6)


def test_q_head_ranges():
    model = small()
    with torch.no_grad():
        for p in model.q_head.parameters():
            p.mul_(1000)  # saturate the outputs
        q = model.q(torch.rand(16, 1, 8, 8) * 2 - 1)
    assert q["mean"].abs().max() <= 1  # the codes' range U(-1, 1)
    assert q["log_sigma"].min() >= -4 and q["log_sigma"].max() <= 2  # σ bounded away from 0 and inf
    fresh = small().q(torch.zeros(3, 1, 8, 8))
    assert torch.allclose(fresh["log_sigma"], torch.zeros_like(fresh["log_sigma"]), atol=0.05)  # σ ≈ 1 at init


def test_mutual_information_gradients_reach_generator_trunk_and_q():
    model = small()
    z = model.sample_latent(16)
    q = model.q(model.generate(z))
    sum(model.mutual_information_terms(q, z).values()).backward()
    for name, module in (("generator", model.generator), ("q_head", model.q_head)):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), f"{name}: parameters without gradient"
        assert all(float(g.abs().sum()) > 0 for g in grads if g.dim() > 1), f"{name}: zero weight gradients"
    assert model.discriminator.trunk[0].weight.grad.abs().sum() > 0  # the shared trunk
    assert model.discriminator.head.weight.grad is None  # the real/fake head is not part of Q


def test_q_is_stepped_by_the_discriminator_optimizer_only():
    model = small()
    opt_g, opt_d = model.configure_optimizers()
    ids = lambda opt: {id(p) for group in opt.param_groups for p in group["params"]}  # noqa: E731
    q_ids = {id(p) for p in model.q_head.parameters()}
    assert q_ids <= ids(opt_d) and not q_ids & ids(opt_g)
    assert ids(opt_g) == {id(p) for p in model.generator.parameters()}
    assert {id(p) for p in model.discriminator.parameters()} <= ids(opt_d)


def test_one_step_logs_the_mi_terms_of_both_phases(tmp_path):
    model = small()
    trainer = cpu_trainer(str(tmp_path), fast_dev_run=True)
    trainer.fit(model, digits_datamodule(32))
    metrics = trainer.callback_metrics
    for name in ("d_info_cat", "d_info_con", "g_info_cat", "g_info_con", "g_adv"):
        key = f"train/{name}_epoch"
        assert key in metrics and math.isfinite(float(metrics[key])), key
    assert trainer.global_step == 2  # one D step and one G step per batch


def test_traversal_grid_is_seeded_deterministic_and_shaped():
    model = small(categories=[4])
    model.eval()
    state = torch.random.get_rng_state()
    a = model.code_traversal(continuous=1, num_steps=5, seed=3)
    b = model.code_traversal(continuous=1, num_steps=5, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    assert a.shape == (4, 5, 1, 8, 8) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, model.code_traversal(continuous=1, num_steps=5, seed=4))  # the noise is the seed's
    assert not torch.equal(a[:, 0], a[:, -1])  # the sweep changes the images
    assert not torch.equal(a[0], a[1])  # so do the categorical values
    # cell (row r, column j) decodes the seeded noise with c_cat = r, c_1 = linspace(-1, 1)[j], c_0 = 0
    noise = torch.randn(1, 8, generator=torch.Generator().manual_seed(3))
    cont = torch.tensor([[0.0, 0.5]])
    cell = model.decode(model.make_latent(noise, [torch.tensor([2])], cont))
    assert torch.allclose(a[2, 3], cell[0], atol=1e-6)
    grid = traversal_grid(model, continuous=0, num_steps=5, seed=3)
    assert grid.dim() == 3 and grid.shape[0] == 3 and torch.equal(grid, traversal_grid(model, 0, num_steps=5, seed=3))
    with pytest.raises(ValueError, match="continuous"):
        model.code_traversal(continuous=2)


def test_code_traversal_callback_logs_one_grid_per_continuous_code(tmp_path, caplog):
    callback = CodeTraversal(num_steps=4, every_n_epochs=1)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[callback])
    trainer.fit(small(categories=[3]), digits_datamodule(32))
    assert set(callback.last_paths) == {"traversal_c0", "traversal_c1"}
    assert all(p.is_file() for p in callback.last_paths.values())
    skipped = CodeTraversal(every_n_epochs=1)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[skipped])
    trainer.fit(tiny_vae(), digits_datamodule(32))
    assert skipped.last_paths == {}


def test_bad_codes_are_refused():
    with pytest.raises(ValueError, match="at least one code"):
        small(categories=[], num_continuous=0)
    with pytest.raises(ValueError, match=r"every value of categories must be an integer in \[2, 4096\], got \[1\]"):
        small(categories=[1])


def _train(epochs: int, seed: int = 0, **kwargs):
    pl.seed_everything(seed, verbose=False)
    torch.set_num_threads(1)
    model = create_model("infogan", **kwargs)
    trainer = cpu_trainer(max_epochs=epochs, limit_val_batches=0, callbacks=[EMA(decay=0.99)])
    trainer.fit(model, digits_datamodule(64))
    return model


def test_short_run_makes_the_categorical_code_recoverable():
    # a small net with little noise (4 dims), so that the code dominates G's input early: 3 epochs, ~5 s
    model = _train(3, noise_dim=4, width=16, q_hidden=32, lambda_cat=2.0)
    model.eval()
    torch.manual_seed(1)
    z = model.sample_latent(1000)
    _, cats, _ = model.split_latent(z)
    predicted, _ = model.infer_codes(model.decode(z))
    accuracy = float((predicted[0] == cats[0]).float().mean())
    assert accuracy > 0.5, f"Q's accuracy on fresh samples {accuracy:.3f} (chance 0.1)"


@pytest.mark.slow
def test_categorical_code_aligns_with_digit_class():
    from scipy.optimize import linear_sum_assignment

    from genlight.metrics import create_extractor

    model = _train(30)
    classifier = create_extractor("digits")
    model.eval()
    torch.manual_seed(1)
    z = model.sample_latent(2000)
    noise, cats, cont = model.split_latent(z)
    cats[0] = torch.arange(10).repeat_interleave(200)
    with torch.no_grad():
        pred = classifier(model.decode(model.make_latent(noise, cats, cont)))[1].argmax(1)
    counts = torch.zeros(10, 10)
    counts.index_put_((cats[0], pred), torch.ones(2000), accumulate=True)
    rows, cols = linear_sum_assignment(-counts.numpy())
    matched = float(counts[rows, cols].sum() / 2000)
    assert matched > 0.4, f"code values matched one-to-one to digit classes: accuracy {matched:.3f} (chance ~0.1)"
