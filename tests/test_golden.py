"""Every shipped hwconfig gives the recorded results, byte for byte (tests/golden/record.py says how they were
recorded). Refactors of the system level must leave them unchanged; a model fix that moves them re-records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("golden_record", Path(__file__).parent / "golden" / "record.py")
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)


@pytest.mark.parametrize("case,hw,mode", G.cases(), ids=[c[0] for c in G.cases()])
def test_results_match_recorded(case, hw, mode, tmp_path):
    old = G.load(case)
    assert old is not None, f"no golden file for {case}: run python tests/golden/record.py"
    now = json.loads(G.canonical(G.result_of(hw, mode, tmp_path)))
    assert G.first_difference(old, now) is None
    assert G.canonical(old) == G.canonical(now)


def test_every_shipped_hwconfig_is_recorded():
    names = {c[0] for c in G.cases()}
    recorded = {p.name.removesuffix(".json.gz") for p in (Path(__file__).parent / "golden").glob("*.json.gz")}
    assert names == recorded
