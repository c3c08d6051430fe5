"""The downstream package checks its family against genlight's family contract, in one line."""

from genlight.testing import check_family
from genlight_freebits.models import FreeBitsVAE


def test_free_bits_vae_meets_the_family_contract(tmp_path):
    check_family(FreeBitsVAE, tmp_path)
