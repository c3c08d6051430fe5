"""digit_captions: attributes measured right on constructed images, per-class tertile thresholds,
captions and tokens, held-out combinations absent from train and validation, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from genlight import create_datamodule
from genlight.data_fit import data_mismatch
from genlight.datamodules.digit_captions import (
    CAPTION_LENGTH, VOCABULARY, DigitCaptionsDataModule, attribute_levels, caption, class_tertiles, detokenize,
    measure_attributes, parse_held_out, tokenize,
)  # fmt: skip
from genlight.modules.dcgan import DCGAN
from genlight.modules.text2image import Text2Image
from genlight.modules.vae import VAE


def _image(pixels: list[tuple[int, int]], value: float = 1.0) -> torch.Tensor:
    x = torch.zeros(1, 1, 8, 8)
    for r, c in pixels:
        x[0, 0, r, c] = value
    return x


def test_measures_of_constructed_strokes():
    thin = _image([(r, 3) for r in range(8)])  # a vertical bar one pixel wide
    thick = _image([(r, c) for r in range(8) for c in (2, 3, 4)])  # three pixels wide
    rising = _image([(7 - i, i) for i in range(8)])  # bottom-left to top-right: the top leans right
    falling = _image([(i, i) for i in range(8)])  # top-left to bottom-right: the top leans left
    m = measure_attributes(torch.cat([thin, thick, rising, falling]))
    stroke, width, slant = m.T
    torch.testing.assert_close(stroke, torch.tensor([8.0, 24.0, 8.0, 8.0], dtype=torch.float64))
    torch.testing.assert_close(width[:2], torch.tensor([0.0, math.sqrt(2 / 3)], dtype=torch.float64))
    torch.testing.assert_close(slant, torch.tensor([0.0, 0.0, 1.0, -1.0], dtype=torch.float64))
    # intensities weigh: a half-grey bar has half the ink and the same shape
    torch.testing.assert_close(measure_attributes(0.5 * thick), m[1:2] * torch.tensor([0.5, 1, 1], dtype=torch.float64))
    assert torch.isfinite(measure_attributes(torch.zeros(2, 1, 8, 8))).all()  # an empty image measures 0


def test_class_tertiles_and_levels():
    values = torch.arange(9, dtype=torch.float64).view(9, 1).repeat(1, 3)
    values[:, 2] *= -1
    y = torch.zeros(9, dtype=torch.long)
    t = class_tertiles(values, y, num_classes=1)
    assert t.shape == (1, 3, 2)
    torch.testing.assert_close(t[0, 0], torch.tensor([8 / 3, 16 / 3], dtype=torch.float64))
    levels = attribute_levels(values, y, t)
    assert levels[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # thirds
    assert levels[:, 2].tolist() == [2, 2, 2, 1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="class 1 has no training image"):
        class_tertiles(values, y, num_classes=2)


def test_captions_and_tokens_round_trip():
    assert caption(7, (2, 1, 0)) == "a thick left-slanted seven"
    assert caption(8, (1, 1, 1)) == "an eight" and caption(8, (0, 2, 2)) == "a thin wide right-slanted eight"
    texts = ["a thick left-slanted seven", "an eight", "A Thin Narrow Right-Slanted Two"]
    tokens = tokenize(texts)
    assert tokens.shape == (3, CAPTION_LENGTH) and tokens[1, 2:].eq(0).all()
    assert detokenize(tokens) == [t.lower() for t in texts]
    with pytest.raises(ValueError, match="unknown word 'purple'.*vocabulary is: a an thin") as err:
        tokenize(["a purple seven"])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="1 to 5 words"):
        tokenize(["a thin narrow left-slanted thick seven"])
    with pytest.raises(ValueError, match="unknown word '<pad>'"):
        tokenize(["<pad> seven"])
    assert VOCABULARY[0] == "<pad>" and len(VOCABULARY) == 19


def test_parse_held_out_and_its_errors():
    assert parse_held_out(["thick seven", "thin wide two"]) == [(7, {0: 2}), (2, {0: 0, 1: 2})]
    for bad in ("thick", "fat seven", "thick thin seven", "seven thick"):
        with pytest.raises(ValueError, match="held_out"):
            parse_held_out([bad])
    with pytest.raises(ValueError, match="cannot read 'fat seven'"):
        DigitCaptionsDataModule(held_out=["fat seven"])  # refused before anything is loaded


def _all(dataset) -> list[torch.Tensor]:
    return [torch.stack(t) for t in zip(*[dataset[i] for i in range(len(dataset))])]


def test_held_out_combinations_are_absent_from_train_and_val():
    dm = create_datamodule("digit_captions", held_out=["thick seven", "right-slanted two"])
    dm.setup("fit")
    for split in ("train", "val"):
        _, y, tokens, levels = _all(dm.reference_dataset(split))
        assert not ((y == 7) & (levels[:, 0] == 2)).any(), split
        assert not ((y == 2) & (levels[:, 2] == 2)).any(), split
        assert not any(c.endswith("seven") and "thick" in c for c in detokenize(tokens))
    _, y, tokens, levels = _all(dm.held_out_set)
    both = ((y == 7) & (levels[:, 0] == 2)) | ((y == 2) & (levels[:, 2] == 2))
    assert both.all() and (y == 7).any() and (y == 2).any()
    assert len(next(iter(dm.held_out_dataloader()))) == 4
    # the test part is untouched; train + val + held out is the rest of the pool
    plain = create_datamodule("digit_captions", held_out=[])
    plain.setup("fit")
    assert len(plain.test_set) == len(dm.test_set) and len(plain.held_out_set) == 0
    assert len(dm.train_set) + len(dm.val_set) + len(dm.held_out_set) == len(plain.train_set) + len(plain.val_set)
    _, y_test, _, levels_test = _all(dm.test_set)
    assert ((y_test == 7) & (levels_test[:, 0] == 2)).any()  # held-out combinations still in test


def test_attributes_and_thresholds_of_the_split():
    dm = create_datamodule("digit_captions", held_out=[])
    dm.setup("fit")
    assert dm.thresholds.shape == (10, 3, 2) and (dm.thresholds[..., 0] <= dm.thresholds[..., 1]).all()
    x, y, tokens, levels = _all(dm.reference_dataset("train"))
    assert torch.equal(dm.levels_of(x, y), levels)  # stored attributes = re-measured ones
    assert detokenize(tokens) == [caption(int(c), lv.tolist()) for c, lv in zip(y, levels)]
    for c in range(10):  # tertiles of each class: about a third of its training images at each level
        share = torch.stack([(levels[y == c] == k).float().mean(0) for k in range(3)])
        assert (share - 1 / 3).abs().max() < 0.05, (c, share)
    batch = next(iter(dm.train_dataloader()))
    assert [t.dtype for t in batch] == [torch.float32, torch.long, torch.long, torch.long]
    assert [tuple(t.shape[1:]) for t in batch] == [(1, 8, 8), (), (CAPTION_LENGTH,), (3,)]
    assert "a zero" in dm.captions("val") and dm.captions("val")[0].endswith("zero")


def test_split_is_deterministic_in_its_seed():
    def train_tokens(seed: int) -> torch.Tensor:
        dm = create_datamodule("digit_captions", seed=seed)
        dm.setup("fit")
        return _all(dm.reference_dataset("train"))[2], dm.thresholds

    (a, ta), (b, tb), (c, _) = train_tokens(0), train_tokens(0), train_tokens(1)
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert a.shape != c.shape or not torch.equal(a, c)


def test_batch_kind_fits_text2image_only():
    assert data_mismatch(Text2Image, DigitCaptionsDataModule) is None
    message = data_mismatch(Text2Image, create_datamodule("digits"))
    assert "captioned images" in message and "digit_captions" in message
    assert "needs images" in data_mismatch(DCGAN, DigitCaptionsDataModule)
    # a family that reads any (x, y) batch does not read (x, y, tokens, attributes): captioned is opt-in
    assert "needs (x, y) batches" in data_mismatch(VAE, DigitCaptionsDataModule)
    assert data_mismatch(VAE, create_datamodule("digits")) is None
