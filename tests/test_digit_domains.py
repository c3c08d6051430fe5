"""digit_domains: every training digit in exactly one domain (no pairs), the validation/test copies are
the operations applied to the plain digit, the 17 grey levels kept by every operation, the batch
layout, determinism by seed, and one-line refusals of bad domain lists."""

from __future__ import annotations

import pytest
import torch

from genlight import create_datamodule
from genlight.data_fit import data_mismatch
from genlight.datamodules.digit_domains import DEFAULT_DOMAINS, DOMAIN_OPS, DigitDomainsDataModule


def _dm(**kwargs) -> DigitDomainsDataModule:
    dm = create_datamodule("digit_domains", batch_size=32, **kwargs)
    dm.setup("fit")
    return dm


def test_each_training_digit_is_in_exactly_one_domain():
    """Training item ``i`` is digit ``i`` of the digits training split (the same seeded split), rendered in
    its one assigned domain: every digit once, so no digit is seen in two domains; the deal is balanced."""
    dm = _dm()
    plain = create_datamodule("digits")
    plain.setup("fit")
    assert len(dm.train_set) == len(plain.train_set)
    counts = torch.zeros(dm.num_domains, dtype=torch.long)
    for i in range(len(dm.train_set)):
        item = dm.train_set[i]
        assert len(item) == 3  # (x, y, domain): no copy in the other domains
        x, y, d = item
        x0, y0 = plain.train_set[i]
        assert int(y) == int(y0)
        assert torch.equal(x, DOMAIN_OPS[dm.domain_names[int(d)]](x0[None])[0])
        counts[int(d)] += 1
    assert counts.sum() == len(dm.train_set) and counts.max() - counts.min() <= 1, counts
    # the four domains' training digits are disjoint sets of digit indices (one domain per index) and
    # the deal is not the round robin of the order of the split
    assign = torch.stack([dm.train_set[i][2] for i in range(len(dm.train_set))])
    assert not torch.equal(assign, torch.arange(len(assign)) % dm.num_domains)


@pytest.mark.parametrize("split", ["val", "test"])
def test_paired_copies_are_the_operations_applied_to_the_plain_digit(split):
    dm = _dm(domains=["plain", "thick", "thin", "inverted", "rotated", "shifted", "flipped"])
    dataset = dm.reference_dataset(split)
    for i in range(0, len(dataset), 7):
        x, y, d, every = dataset[i]
        assert int(d) == i % dm.num_domains and torch.equal(x, every[d])
        for t, name in enumerate(dm.domain_names):
            assert torch.equal(every[t], DOMAIN_OPS[name](every[0][None])[0]), (i, name)
    digits = create_datamodule("digits")
    digits.setup("fit")
    assert torch.equal(dataset[3][3][0], digits.reference_dataset(split)[3][0])  # the same digits as `digits`


def test_every_operation_keeps_the_17_levels_and_known_values():
    x = torch.tensor([[0.0, 0.25, 1.0], [0.5, 0.0, 0.0625]])[None, None]  # (1, 1, 2, 3)
    ops = {name: op(x)[0, 0] for name, op in DOMAIN_OPS.items()}
    assert torch.equal(ops["thick"], torch.tensor([[0.25, 1.0, 1.0], [0.5, 0.0625, 0.0625]]))  # max(pixel, right)
    assert torch.equal(ops["thin"], torch.tensor([[0.0, 0.25, 0.0], [0.0, 0.0, 0.0]]))  # min(pixel, right), 0 beyond
    assert torch.equal(ops["inverted"], 1 - x[0, 0])
    assert torch.equal(ops["shifted"], torch.tensor([[0.0, 0.0, 0.25], [0.0, 0.5, 0.0]]))
    dm = _dm(domains=list(DOMAIN_OPS))
    every = dm.test_set.every * 16
    assert torch.equal(every, every.round()) and every.min() >= 0 and every.max() <= 16
    assert dm.num_levels == 17


def test_batch_layout_and_batch_kind():
    dm = _dm()
    x, y, d = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 8, 8) and d.shape == y.shape == (32,) and d.dtype == torch.long
    x, y, d, every = next(iter(dm.val_dataloader()))
    assert every.shape == (32, 4, 1, 8, 8) and torch.equal(every[torch.arange(32), d], x)
    assert dm.batch_kind == "domains" and dm.domain_names == DEFAULT_DOMAINS and dm.num_domains == 4
    message = data_mismatch(type("ImagesOnly", (), {"batch_kinds": ("images",)}), dm)
    assert "images in named domains" in message


def test_deterministic_by_seed():
    a, b, c = _dm(seed=3), _dm(seed=3), _dm(seed=4)
    assert torch.equal(a.train_set.assign, b.train_set.assign) and torch.equal(a.train_set.every, b.train_set.every)
    assert not torch.equal(a.train_set.assign, c.train_set.assign)


@pytest.mark.parametrize(
    ("domains", "message"),
    [
        (["plain", "bold"], r"unknown domain\(s\) 'bold'; known: plain, thick, thin, inverted, rotated"),
        (["plain", "plain"], "repeat a name"),
        (["plain"], "at least two domains"),
    ],
)
def test_bad_domain_lists_are_refused_in_one_line(domains, message):
    with pytest.raises(ValueError, match=message) as err:
        DigitDomainsDataModule(domains=domains)
    assert "\n" not in str(err.value)
