"""text2image (Reed et al. 2016): wrong captions never match, the GAN-CLS loss, the GAN-INT term, the
tokeniser, the contrastive text encoder, matching-awareness after a short training, the caption grid
and ``genlight sample --text``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genlight import create_datamodule, create_model, load_model
from genlight.callbacks import CaptionGrid, EMA
from genlight.cli import main
from genlight.datamodules.digit_captions import VOCABULARY, detokenize, tokenize
from genlight.errors import ConfigError, IncompatibleDataError
from genlight.modules.text2image import contrastive_loss, gan_cls_discriminator_loss, wrong_indices
from genlight.types import TextConditionalSampler
from tests.helpers import cpu_trainer

SMALL = {"latent_dim": 8, "width": 8, "embed_dim": 8, "text_dim": 8, "proj_dim": 8}


def _model(**kwargs):
    torch.manual_seed(0)
    return create_model("text2image", **{**SMALL, **kwargs})


def test_wrong_caption_never_matches_the_right_one():
    gen = torch.Generator().manual_seed(0)
    tokens = tokenize(["a seven", "a thick seven", "a seven", "a two", "a seven", "a seven"])
    for _ in range(200):
        j, found = wrong_indices(tokens, generator=gen)
        assert found.all()
        assert not (tokens[j] == tokens).all(1).any()  # another caption, never the same one
    seen = {int(j) for _ in range(200) for j in wrong_indices(tokens, generator=gen)[0][[0]]}
    assert seen == {1, 3}  # drawn among all the differing captions
    y = torch.tensor([7, 7, 7, 2, 7, 7])  # the GAN-INT partner of a seven: the other seven caption, where there is one
    for _ in range(50):
        j, found = wrong_indices(tokens, generator=gen, prefer=y[:, None] == y[None, :])
        assert found.all() and j[0] == 1 and j[3] in (0, 1, 2, 4, 5)
    same = tokenize(["a seven"] * 4)
    j, found = wrong_indices(same)
    assert not found.any()  # a batch of one caption has no wrong caption: those rows are dropped


def test_gan_cls_loss_weights_the_two_mismatched_terms_by_half():
    rr, rw, fr = torch.randn(5), torch.randn(4), torch.randn(5)
    by_hand = F.softplus(-rr).mean() + 0.5 * F.softplus(rw).mean() + 0.5 * F.softplus(fr).mean()
    torch.testing.assert_close(gan_cls_discriminator_loss("non_saturating", rr, rw, fr), by_hand)
    hinge = F.relu(1 - rr).mean() + 0.5 * F.relu(1 + rw).mean() + 0.5 * F.relu(1 + fr).mean()
    torch.testing.assert_close(gan_cls_discriminator_loss("hinge", rr, rw, fr), hinge)


def test_contrastive_loss_counts_equal_captions_as_positives():
    tokens = tokenize(["a seven", "a seven", "a two"])
    emb = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=1)
    low = contrastive_loss(emb, emb, tokens, temperature=0.05)
    wrong = contrastive_loss(emb, emb.flip(0), tokens, temperature=0.05)
    assert low < 0.7 < wrong  # 2 equal positives: log 2 = 0.69 is the floor of a perfect match


def test_tokeniser_round_trip_and_unknown_words():
    model = _model()
    captions = ["a thick left-slanted seven", "an eight", "a thin narrow right-slanted two"]
    assert detokenize(model.tokenize(captions), model.vocabulary) == captions
    assert model.vocabulary == VOCABULARY and tuple(model.hparams["vocabulary"]) == VOCABULARY
    with pytest.raises(ValueError, match=r"unknown word 'purple'.*vocabulary is: a an thin thick") as err:
        model.sample(2, text=["a purple seven"])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="text or y"):
        model.sample(2, text="a seven", y=torch.tensor([7, 7]))


def test_sampling_by_text_and_by_class_caption():
    model = _model().eval()
    assert isinstance(model, TextConditionalSampler)
    torch.manual_seed(3)
    by_text = model.sample(4, text=["a seven", "an eight"])
    torch.manual_seed(3)
    by_label = model.sample(4, y=torch.tensor([7, 8, 7, 8]))
    assert by_text.shape == (4, 1, 8, 8) and torch.equal(by_text, by_label)  # y -> the class captions
    torch.manual_seed(3)
    assert not torch.equal(model.sample(4, text="a thick seven"), model.sample(4, text="a thin seven"))


def test_refuses_other_data_and_another_vocabulary(tmp_path):
    with pytest.raises(IncompatibleDataError, match="captioned images"):
        cpu_trainer(tmp_path, fast_dev_run=True).fit(_model(), datamodule=create_datamodule("digits", batch_size=16))
    other = _model(vocabulary=(*VOCABULARY, "huge"))
    with pytest.raises(IncompatibleDataError, match="vocabulary"):
        cpu_trainer(tmp_path, fast_dev_run=True).fit(other, datamodule=create_datamodule("digit_captions", batch_size=16))


def test_generator_step_has_the_gan_int_term_on_interpolated_captions(tmp_path):
    """G runs twice per step: on the batch's caption embeddings (unit norm) and on midpoints between
    each and a different caption's (beta 0.5: norm below 1, so no caption's own embedding)."""
    model = _model()
    calls: list[torch.Tensor] = []
    model.generator.register_forward_hook(lambda m, args, out: calls.append(args[1].detach().clone()))
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, datamodule=create_datamodule("digit_captions", batch_size=32))
    t, t_int = calls[0], calls[1]
    torch.testing.assert_close(t.norm(dim=1), torch.ones(len(t)))
    assert (t_int.norm(dim=1) < 0.999).all()
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/g_int_epoch"]) and torch.isfinite(metrics["train/contrastive_epoch"])


def test_int_weight_zero_drops_the_gan_int_gradient(tmp_path):
    def g_grads(int_weight: float) -> torch.Tensor:
        model = _model(int_weight=int_weight, lr_g=1e-2)
        before = [p.detach().clone() for p in model.generator.parameters()]
        torch.manual_seed(1)
        cpu_trainer(tmp_path, fast_dev_run=True).fit(model, datamodule=create_datamodule("digit_captions", batch_size=32))
        return torch.cat([(p - b).flatten() for p, b in zip(model.generator.parameters(), before)])

    assert not torch.allclose(g_grads(0.0), g_grads(1.0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A few epochs on digit_captions (about 10 s on one CPU thread)."""
    torch.manual_seed(0)
    dm = create_datamodule("digit_captions", batch_size=64)
    model = create_model("text2image", latent_dim=16, width=16, lr_g=2e-3, lr_d=2e-3, betas=(0.0, 0.9))
    root = tmp_path_factory.mktemp("t2i")
    trainer = cpu_trainer(str(root), max_epochs=6, callbacks=[EMA()], num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    path = root / "model.ckpt"
    trainer.save_checkpoint(path)
    return model.eval(), dm, trainer, path


def test_discriminator_scores_wrong_captions_lower_on_validation_images(trained):
    model, dm, trainer, _ = trained
    x, y, tokens, _ = next(iter(torch.utils.data.DataLoader(dm.val_set, batch_size=len(dm.val_set))))
    j, found = wrong_indices(tokens, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        real = x * 2 - 1
        t = model.embed_text(tokens)
        right = model.discriminator(real, t)
        wrong = model.discriminator(real[found], t[j][found])
    assert right.mean() > wrong.mean() + 0.1, (right.mean(), wrong.mean())
    assert trainer.callback_metrics["val/d_right"] > trainer.callback_metrics["val/d_wrong"]


def test_text_encoder_separates_captions_and_retrieves_them(trained):
    model, dm, trainer, _ = trained
    captions = dm.captions("train")
    with torch.no_grad():
        emb = model.embed_text(model.tokenize(captions))
    cos = emb @ emb.T
    assert cos[~torch.eye(len(captions), dtype=torch.bool)].max() < 0.99  # no two captions collapse together
    assert trainer.callback_metrics["val/retrieval"] > 0.3  # chance: about 1/60 distinct captions per batch


def test_caption_grid_one_row_per_caption(trained, tmp_path):
    model, dm, trainer, _ = trained
    grid = CaptionGrid(num_captions=3, per_caption=4)
    captions = grid.chosen_captions(trainer)
    assert len(captions) == 3 and all(c in dm.captions("val") for c in captions)
    images = grid.draw(model, captions)
    assert images.shape == (12, 1, 8, 8)
    torch.manual_seed(0)
    assert torch.equal(images, grid.draw(model, captions))  # seeded: comparable across epochs
    fixed = CaptionGrid(captions=["a thick seven"], per_caption=2)
    assert fixed.chosen_captions(trainer) == ["a thick seven"]


def test_cli_sample_with_text(trained, tmp_path, monkeypatch, capsys):
    _, _, _, ckpt = trained
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt_path", str(ckpt), "-n", "6", "--text", "a thick seven", "a thin two", "--out", "t.pt"])
    assert exit_info.value.code == 0
    images = torch.load(tmp_path / "t.pt")
    assert images.shape == (6, 1, 8, 8)
    loaded = load_model(ckpt)
    torch.manual_seed(0)
    again = loaded.sample(6, text=["a thick seven", "a thin two"])
    assert torch.equal(images, again)  # --seed 0, the captions repeated to -n
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt_path", str(ckpt), "--text", "a purple seven"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "unknown word 'purple'" in err and "vocabulary is:" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_sample_refuses_text_for_a_model_without_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = create_model("dcgan", latent_dim=4, width=4)
    trainer = cpu_trainer(str(tmp_path), fast_dev_run=True)
    trainer.fit(model, datamodule=create_datamodule("digits", batch_size=16))
    trainer.save_checkpoint(tmp_path / "dcgan.ckpt")
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt_path", str(tmp_path / "dcgan.ckpt"), "--text", "a seven"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and "DCGAN does not take text" in err and "text2image" in err
    assert len(err.splitlines()) == 1


def test_bad_arguments_are_refused_before_anything_is_built():
    with pytest.raises(ConfigError, match="loss 'wasserstein_gp' is not supported"):
        create_model("text2image", loss="wasserstein_gp")
    with pytest.raises(ConfigError, match="int_partner must be 'any' or 'same_class'"):
        create_model("text2image", int_partner="nearest")
    with pytest.raises(IncompatibleDataError, match="labelled data"):
        create_model("text2image", num_classes=0)
    with pytest.raises(ValueError, match="unknown word 'purple'"):
        create_model("text2image", class_captions=("a purple zero",) * 10)
