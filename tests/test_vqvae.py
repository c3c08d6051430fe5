"""VQ-VAE: the quantiser's straight-through gradient, EMA update and dead-code restarts; the code prior's
exact likelihood and causality; encode/decode; the bound ``log p(x|z*) + log p(z*) <= log p(x)`` against
the exact sum over every code map; stage two loading a stage-one checkpoint (frozen) with one-line errors."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from genlight import create_model
from genlight.errors import CheckpointError, CheckpointNotFoundError, ConfigError, ImageShapeError
from genlight.nn import GatedCodePrior, VectorQuantizer
from genlight.testing import tiny_trainer
from genlight.testing.spaces import all_images

SMALL = {"num_codes": 4, "code_dim": 4, "hidden_channels": 8, "num_res_blocks": 1}


def vqvae(**overrides):
    torch.manual_seed(0)
    return create_model("vqvae", **{**SMALL, **overrides})


# ---------------------------------------------------------------------------- the quantiser
def test_straight_through_gradient_reaches_the_encoder():
    model = vqvae()
    x = torch.rand(4, 1, 8, 8)
    q = model.quantizer(model.encoder(x))
    nll = -model.likelihood.log_prob(model.decoder(q.z_q), x).sum()  # the reconstruction term alone
    nll.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # through argmin, by straight-through
    # z_q's gradient is copied to z_e unchanged: d loss / d z_e == d loss / d z_q
    z_e = torch.randn(2, 4, 3, 3, requires_grad=True)
    q = model.quantizer(z_e)
    upstream = torch.randn_like(q.z_q)
    (g,) = torch.autograd.grad((q.z_q * upstream).sum(), z_e)
    assert torch.equal(g, upstream)
    assert torch.allclose(q.z_q, model.quantizer.lookup(q.indices))  # forward: the code vectors


def test_codebook_and_commitment_losses_train_what_they_should():
    vq = VectorQuantizer(4, 3, ema=False, restart_threshold=0)
    z_e = torch.randn(2, 3, 2, 2, requires_grad=True)
    q = vq(z_e)
    e = vq.lookup(q.indices)
    assert torch.allclose(q.commitment, (z_e - e).pow(2).flatten(1).sum(1))
    assert torch.allclose(q.codebook, q.commitment)
    g_enc, g_code = torch.autograd.grad(q.codebook.sum(), (z_e, vq.embedding), retain_graph=True, allow_unused=True)
    assert g_enc is None and g_code.abs().sum() > 0  # sg(z_e): the codebook loss moves only the codes
    g_enc, g_code = torch.autograd.grad(q.commitment.sum(), (z_e, vq.embedding), allow_unused=True)
    assert g_code is None and g_enc.abs().sum() > 0  # sg(e): the commitment loss moves only the encoder


def test_ema_update_equals_its_formula():
    torch.manual_seed(0)
    k, d, g, eps = 5, 3, 0.9, 1e-5
    vq = VectorQuantizer(k, d, ema=True, decay=g, eps=eps, restart_threshold=0)
    vq.cluster_size.copy_(torch.rand(k) * 4)
    vq.embed_sum.copy_(torch.randn(k, d))
    vq.embedding.copy_(torch.randn(k, d))
    size0, sum0 = vq.cluster_size.clone(), vq.embed_sum.clone()
    z_e = torch.randn(3, d, 2, 2)
    q = vq(z_e, update=True)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
    idx = q.indices.flatten()
    n_k = torch.stack([(idx == j).sum() for j in range(k)]).float()
    s_k = torch.stack([flat[idx == j].sum(0) for j in range(k)])
    size = g * size0 + (1 - g) * n_k
    sums = g * sum0 + (1 - g) * s_k
    n = size.sum()
    expected = sums / ((size + eps) / (n + k * eps) * n)[:, None]
    assert torch.allclose(vq.cluster_size, size) and torch.allclose(vq.embed_sum, sums)
    assert torch.allclose(vq.embedding, expected, atol=1e-6)
    assert not vq.embedding.requires_grad  # a buffer: no gradient moves it


def test_dead_codes_are_restarted_at_encoder_outputs():
    def far_codes() -> VectorQuantizer:
        torch.manual_seed(0)
        vq = VectorQuantizer(8, 2, ema=True, decay=0.5, restart_threshold=1.0)
        with torch.no_grad():
            vq.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]] + [[50.0, 50.0]] * 6))
            vq.embed_sum.copy_(vq.embedding)
            vq.cluster_size.fill_(1.0)
        return vq

    z_e = (torch.randn(4, 2, 3, 3) * 0.1).abs()  # every vector nearest code 0 or 1, none near the far codes
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    vq = far_codes()
    vq(z_e, update=True)
    for j in range(2, 8):  # never assigned: usage 0.5 < 1, restarted at one of the batch's vectors
        assert (vq.embedding[j] - flat).abs().sum(1).min() < 1e-5, j
        assert vq.usage[j] >= 1.0  # usage reset, so it is not restarted again at once
    assert len(vq(z_e).indices.unique()) > 2  # the restarted codes now take vectors
    off = far_codes()
    off.restart_threshold = 0.0
    off(z_e, update=True)
    assert (off.usage[2:] < 1).all()  # as dead as before ...
    assert torch.cdist(off.embedding[2:], flat).min() > 10  # ... and left far away: no restart ran


# ---------------------------------------------------------------------------- the code prior
def test_code_prior_is_normalised_and_causal():
    torch.manual_seed(0)
    prior = GatedCodePrior(3, (2, 2), hidden_channels=8, num_layers=2, kernel_size=3)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    maps = torch.tensor(list(itertools.product(range(3), repeat=4))).view(-1, 2, 2)  # all 81 code maps
    with torch.no_grad():
        total = prior.log_prob(maps).double().exp().sum()
    assert abs(float(total) - 1) < 1e-5
    base = torch.randint(3, (1, 3, 3))
    positions = list(itertools.product(range(3), range(3)))
    for pos, (i, j) in enumerate(positions):  # changing a code leaves the conditionals at and before it unchanged
        changed = base.clone()
        changed[0, i, j] = (changed[0, i, j] + 1) % 3
        prior3 = GatedCodePrior(3, (3, 3), 8, 2, 3)
        torch.manual_seed(1)
        with torch.no_grad():
            a, b = prior3.logits(base), prior3.logits(changed)
        for r, c in positions[: pos + 1]:
            assert torch.allclose(a[0, :, r, c], b[0, :, r, c]), ((i, j), (r, c))
        if pos + 1 < len(positions):
            r, c = positions[pos + 1]
            assert not torch.allclose(a[0, :, r, c], b[0, :, r, c])  # the next one sees it
    assert prior.sample(5).shape == (5, 2, 2)


# ---------------------------------------------------------------------------- the family
def test_encode_decode_round_trip_shapes():
    model = vqvae(downsample=2, image_shape=(1, 8, 8)).eval()
    x = torch.rand(3, 1, 8, 8)
    z = model.encode(x)
    assert z.shape == (3, 2, 2) and z.dtype == torch.long and 0 <= int(z.min()) and int(z.max()) < 4
    with torch.no_grad():
        back = model.decode(z)
    assert back.shape == x.shape and 0 <= float(back.min()) and float(back.max()) <= 1
    assert model.sample_latent(5).shape == (5, 2, 2)
    assert model.features(x).shape == (3, 4 * 2 * 2)
    with pytest.raises(ValueError, match="integer code maps"):
        model.decode(z.float())


def test_bound_below_the_exact_sum_over_every_code_map():
    """1x2x2 images with 3 levels, a 1x1 map of 4 codes: ``log p(x) = logsumexp_z log p(x|z) + log p(z)``
    over the 4 maps; it sums to 1 over the 81 images, and the bound at the encoder's code is below it
    for every image; the importance-weighted bound lies between them
    on average."""
    for prior in ("uniform", "gated_pixelcnn"):
        model = vqvae(image_shape=(1, 2, 2), num_levels=3, prior=prior, prior_channels=8, prior_layers=2)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.5 * torch.randn_like(p))
        model.eval()
        x = all_images()
        with torch.no_grad():
            exact = model.exact_log_prob(x).double()
            bound = model.log_prob(x).double()
            torch.manual_seed(0)
            iwae = model.log_prob(x, num_samples=256).double()
        assert abs(float(exact.exp().sum()) - 1) < 1e-4
        assert (bound <= exact + 1e-5).all()
        assert float((exact - bound).max()) > 1e-3  # not trivially tight: the other codes carry mass
        assert float((iwae - exact).mean()) < 0.02  # a stochastic bound: below log p(x) on average over the 81
        assert float(iwae.mean()) > float(bound.mean())


def test_shape_and_option_errors_are_one_line():
    with pytest.raises(ImageShapeError, match="downsample=2 needs H and W that are multiples of 4"):
        vqvae(image_shape=(1, 6, 6), downsample=2)
    with pytest.raises(ConfigError, match="prior=uniform has nothing to fit"):
        vqvae(vqvae_ckpt="stage_one.ckpt")
    with pytest.raises(ConfigError, match="prior_kernel must be odd"):
        vqvae(prior="gated_pixelcnn", prior_kernel=4)


def _stage_one(tmp_path: Path, digits) -> Path:
    model = vqvae()
    trainer = tiny_trainer(default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=digits)
    path = tmp_path / "stage_one.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_stage_two_loads_stage_one_frozen_and_fits_the_prior(tmp_path, digits):
    path = _stage_one(tmp_path, digits)
    saved = torch.load(path, weights_only=True)["state_dict"]
    stage_two = vqvae(prior="gated_pixelcnn", prior_channels=8, prior_layers=2, vqvae_ckpt=str(path))
    prior_before = {k: v.clone() for k, v in stage_two.code_prior.state_dict().items()}
    tiny_trainer(default_root_dir=str(tmp_path)).fit(stage_two, datamodule=digits)
    assert stage_two.stage_one_frozen
    for key, value in stage_two.state_dict().items():
        if key.startswith(("encoder.", "decoder.", "quantizer.")):
            assert torch.equal(value, saved[key]), key  # loaded, and not moved by the fit (EMA, restarts included)
    assert any(not torch.equal(v, prior_before[k]) for k, v in stage_two.code_prior.state_dict().items())
    with torch.no_grad():
        assert torch.isfinite(stage_two.eval().log_prob(next(iter(digits.val_dataloader()))[0])).all()


def test_stage_two_refuses_a_mismatched_or_missing_checkpoint(tmp_path, digits):
    path = _stage_one(tmp_path, digits)
    other = vqvae(prior="gated_pixelcnn", code_dim=8, vqvae_ckpt=str(path))
    with pytest.raises(ConfigError, match=r"code_dim=8; pass --model.code_dim 4"):
        other.setup("fit")
    missing = vqvae(prior="gated_pixelcnn", vqvae_ckpt=str(tmp_path / "nope.ckpt"))
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        missing.setup("fit")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    junk = vqvae(prior="gated_pixelcnn", vqvae_ckpt=str(tmp_path / "junk.ckpt"))
    with pytest.raises(CheckpointError, match="cannot be read with weights_only=True") as error:
        junk.setup("fit")
    assert "\n" not in str(error.value)


def test_uniform_prior_bound_is_reconstruction_plus_code_length():
    model = vqvae().eval()
    x = (torch.randint(0, 17, (3, 1, 8, 8)) / 16).float()
    with torch.no_grad():
        z = model.encode(x)
        recon = model.likelihood.log_prob(model.decoder_params(z), x)
        assert torch.allclose(model.log_prob(x), recon - 16 * math.log(4))
