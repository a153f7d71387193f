"""The papers' trends on their own set-ups (archsim.validation_papers, the table in docs/validation.md):
RecNMP's rank scaling, build-up and energy saving; ReCross's gain over RecNMP and its energy saving."""

from __future__ import annotations

import pytest

from archsim.validation_papers import recnmp_checks, recross_bound, recross_checks

# entries that differ from the paper by more than 30% at the validation's batch size, for reasons
# docs/validation.md gives, with the direction of the difference: the 4-lane units cap RecNMP-opt at ranks x
# the baseline's bus efficiency (below the paper); RankCache hits save array energy too (above the paper)
KNOWN_OUTSIDE = {"+ hot-entry profile": -1, "RecNMP-opt 8 ranks vs baseline, per-access energy": +1}


@pytest.fixture(scope="module")
def checks():
    return list(recnmp_checks(64)) + list(recross_checks(32))


def _by(checks, prefix: str):
    return [c for c in checks if c.case.startswith(prefix)]


def test_every_paper_figure_within_30_percent_or_documented(checks) -> None:
    assert len(checks) == 15
    for c in checks:
        sign = next((v for k, v in KNOWN_OUTSIDE.items() if c.case.startswith(k)), 0)
        if sign:
            assert (c.archsim - c.reference) * sign > 0, c  # on the documented side of the paper
        else:
            assert c.ok, c


def test_recnmp_scales_with_ranks_and_packets(checks) -> None:
    one = [c.archsim for c in _by(checks, "RecNMP-base") if "1 pooling/packet" in c.case]
    free = [c.archsim for c in _by(checks, "RecNMP-base") if "no packet barrier" in c.case]
    assert one == sorted(one) and free == sorted(free)  # 2 < 4 < 8 ranks
    assert all(a < b for a, b in zip(one, free))  # a packet barrier costs speed
    build = [c.archsim for c in checks if "8 poolings/packet" in c.case]
    assert build[0] < build[1] <= build[2] * 1.001  # the RankCache helps; profiling does not hurt


def test_recross_gain_grows_with_pooling(checks) -> None:
    gain = {int(c.case.split("pooling ")[1].split()[0]): c.archsim for c in _by(checks, "ReCross vs RecNMP")}
    assert gain[20] < gain[80] < gain[160]
    assert recross_bound(20) < recross_bound(80) < recross_bound(160) == 4.0
