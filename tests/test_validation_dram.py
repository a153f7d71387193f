"""archsim against DRAMsim3 and Ramulator 2 on the shared traces (validation/reference/dram/reference.csv).

Tolerances (issue #2): DRAMsim3 configurations: bandwidth 5 %, mean read latency 10 %, row-buffer hit rate
3 points, total energy 10 %; Ramulator 2 configuration: saturation bandwidth 10 %. The reference numbers are
read from the CSV, never copied here.
"""

from __future__ import annotations

import pytest

from archsim.validation import TOLERANCES, case_name, dram_cases, run_case

CASES = dram_cases()


def test_reference_copy_is_complete():
    sims = {r["simulator"] for r in CASES}
    assert sims == {"DRAMsim3", "Ramulator2"}
    assert len(CASES) == 28
    assert all(int(r["requests"]) == 100000 for r in CASES)


@pytest.mark.parametrize("row", CASES, ids=[case_name(r) for r in CASES])
def test_against_reference(row):
    summary, checks = run_case(row)
    expected_metrics = [m for m, _, _ in TOLERANCES[row["simulator"]] if row.get(m)]
    assert [c.metric for c in checks] == expected_metrics
    assert summary["requests"] == int(row["requests"])
    bad = [f"{c.metric}: archsim {c.archsim:.6g} vs {c.reference:.6g} ({c.error_text()}, tol {c.tol_text()})"
           for c in checks if not c.ok]
    assert not bad, "; ".join(bad)
