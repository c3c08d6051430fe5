"""cgan: the projection discriminator, conditional batch norm, spectral norm, labels, and (slow) that
samples of class k look like a k to the bundled digits classifier."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from genlight import create_datamodule, create_model
from genlight.errors import IncompatibleDataError
from genlight.metrics import create_extractor
from genlight.nn.adversarial import ConditionalBatchNorm2d
from genlight.nn.dcgan import DCGANDiscriminator
from tests.helpers import cpu_trainer


def _model(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return create_model("cgan", **{"latent_dim": 8, "width": 8, **kwargs})


def test_projection_term_is_inner_product_of_label_embedding_and_summed_features():
    torch.manual_seed(0)
    d = DCGANDiscriminator((1, 8, 8), 8, norm="spectral", num_classes=10).eval()  # eval: no power iteration
    x = torch.randn(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 4, 9])
    with torch.no_grad():
        out = d(x, y)
        h = d.features(x)
        unconditional = d.head(h.flatten(1)).squeeze(1)
        embed = d.embed.weight  # the spectrally normalised embedding matrix
        by_hand = unconditional + (embed[y] * h.sum(dim=(2, 3))).sum(dim=1)
        other = d(x, (y + 1) % 10)
    torch.testing.assert_close(out, by_hand)
    # the label moves the logit by exactly <embed(y) - embed(y'), sum_hw h>
    torch.testing.assert_close(out - other, ((embed[y] - embed[(y + 1) % 10]) * h.sum(dim=(2, 3))).sum(1))
    assert (out - other).abs().min() > 1e-6, "the projection term must depend on y"
    with pytest.raises(ValueError, match="pass labels y"):
        d(x)


def test_conditional_batch_norm_with_zero_embeddings_is_plain_batch_norm():
    torch.manual_seed(0)
    cbn, bn = ConditionalBatchNorm2d(5, 10), nn.BatchNorm2d(5)  # bn: weight 1, bias 0 at init
    x = torch.randn(8, 5, 3, 3) * 3 + 1
    y = torch.randint(10, (8,))
    torch.testing.assert_close(cbn(x, y), bn(x))  # train mode: batch statistics
    torch.testing.assert_close(cbn.norm.running_mean, bn.running_mean)
    torch.testing.assert_close(cbn.norm.running_var, bn.running_var)
    cbn.eval(), bn.eval()
    torch.testing.assert_close(cbn(x, y), bn(x))  # eval mode: running statistics
    torch.testing.assert_close(cbn(x, (y + 3) % 10), bn(x))
    with torch.no_grad():  # once the embeddings move, the label matters
        cbn.gain.weight[3] += 0.5
    assert not torch.allclose(cbn(x, torch.full((8,), 3)), bn(x))


def test_generator_ignores_labels_at_init_and_not_after_training():
    model = _model()
    z = torch.randn(4, 8)
    with torch.no_grad():
        g0 = model.generator(z, torch.zeros(4, dtype=torch.long))
        g1 = model.generator(z, torch.full((4,), 7))
    torch.testing.assert_close(g0, g1)  # cBN with zero embeddings at init: no label effect yet
    dm = create_datamodule("digits", batch_size=32)
    cpu_trainer(max_steps=6, limit_val_batches=0).fit(model, datamodule=dm)
    with torch.no_grad():
        g0 = model.generator(z, torch.zeros(4, dtype=torch.long))
        g1 = model.generator(z, torch.full((4,), 7))
    assert not torch.allclose(g0, g1), "training must make the generator depend on the label"


def test_spectral_norm_keeps_largest_singular_value_near_one_after_training():
    model = _model()
    before = {n: p.detach().clone() for n, p in model.discriminator.named_parameters()}
    dm = create_datamodule("digits", batch_size=32)
    cpu_trainer(max_steps=20, limit_val_batches=0).fit(model, datamodule=dm)  # 10 D steps, 10 G steps
    d = model.discriminator.eval()  # eval: reading the weight runs no further power iteration
    normalised = [m for m in d.modules() if hasattr(m, "parametrizations")]
    assert len(normalised) == 4  # first conv, strided conv, linear head, projection embedding (8x8, width 8)
    raw_sigmas = []
    for m in normalised:
        assert not torch.equal(m.parametrizations.weight.original, before[_name(d, m)]), "D was not trained"
        with torch.no_grad():
            w = m.weight.flatten(1)  # (out, in * kh * kw); the embedding is (classes, channels)
            raw = m.parametrizations.weight.original.detach().flatten(1)
        sigma = float(torch.linalg.matrix_norm(w, ord=2))
        # one power iteration per training forward: the estimate u^T W v <= sigma_max lags a little behind
        # the moving weights, so W / estimate has norm slightly >= 1, never much more
        assert 0.999 <= sigma <= 1.05, f"{type(m).__name__}: largest singular value {sigma:.4f}"
        raw_sigmas.append(float(torch.linalg.matrix_norm(raw, ord=2)))
    assert any(abs(s - 1.0) > 0.1 for s in raw_sigmas), "the check is vacuous: the raw weights already have norm 1"


def _name(root: nn.Module, module: nn.Module) -> str:
    prefix = next(n for n, m in root.named_modules() if m is module)
    return f"{prefix}.parametrizations.weight.original"


def test_labels_num_classes_and_errors():
    model = _model(num_classes=3).eval()
    assert model.num_classes == 3
    images = model.sample(5, y=2)  # an int is repeated
    assert images.shape == (5, 1, 8, 8) and 0 <= images.min() and images.max() <= 1
    assert model.sample(4).shape == (4, 1, 8, 8)  # labels from the class prior
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        model.sample(2, y=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="class ids"):
        model.sample(3, y=torch.tensor([0, 1]))
    for bad in (0, -1):
        with pytest.raises(IncompatibleDataError, match="num_classes > 0"):
            create_model("cgan", num_classes=bad)
    with pytest.raises(ValueError, match="hinge"):
        create_model("cgan", loss="bce")


def test_setup_refuses_a_datamodule_with_other_classes():
    model = _model(num_classes=4)
    with pytest.raises(IncompatibleDataError, match="built for 4 classes"):
        cpu_trainer(max_steps=1).fit(model, datamodule=create_datamodule("digits", batch_size=32))


@pytest.mark.slow
def test_samples_are_classified_as_their_label():
    """The tuned digits recipe (examples/digits/cgan.yaml: width 32, lr 2e-3) for 20 epochs (~40 s on one
    thread): the bundled digits classifier labels at least 80% of 500 class-balanced samples of the EMA
    generator with their requested class (chance 10%; the tuning run measured 0.99 at epoch 20)."""
    from genlight.callbacks.ema import EMA, find_ema

    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    dm = create_datamodule("digits", batch_size=64, seed=0)
    model = create_model("cgan", num_classes=10, width=32, lr_g=2e-3, lr_d=2e-3)
    cpu_trainer(max_epochs=20, limit_val_batches=0, callbacks=[EMA()]).fit(model, datamodule=dm)
    classifier = create_extractor("digits")
    y = torch.arange(500) % 10
    with find_ema(model).averaged(model):
        model.eval()
        torch.manual_seed(0)
        with torch.no_grad():
            logits = classifier(model.sample(500, y=y))[1]
    accuracy = float((logits.argmax(1) == y).float().mean())
    assert accuracy >= 0.8, f"class accuracy of samples {accuracy:.3f} (chance 0.10)"
