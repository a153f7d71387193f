"""Tests for archsim.core.energy: the per-(component, kind) energy ledger."""

from __future__ import annotations

import json

import pytest

from archsim.core.energy import EnergyLedger, pj_to_nj


def make_ledger() -> EnergyLedger:
    led = EnergyLedger()
    led.book("system.dram.ch0", "act", 2.0)
    led.book("system.dram.ch0", "act", 3.0)
    led.book_n("system.dram.ch0", "read", 1.5, 4)
    led.book("system.dram.ch1", "refresh", 10.0)
    led.book("system.cxl.link0", "io", 0.25)
    led.book("system.dramcache", "sram", 1.0)
    return led


def test_book_and_totals() -> None:
    led = make_ledger()
    assert led.get("system.dram.ch0", "act") == 5.0
    assert led.get("system.dram.ch0", "read") == 6.0
    assert led.get("system.dram.ch0", "write") == 0.0
    assert led.total_pj() == pytest.approx(22.25)
    assert len(led) == 5


def test_by_kind() -> None:
    led = make_ledger()
    assert led.by_kind() == pytest.approx({"act": 5.0, "io": 0.25, "read": 6.0, "refresh": 10.0, "sram": 1.0})
    assert list(led.by_kind()) == ["act", "io", "read", "refresh", "sram"]


def test_by_component_and_prefix() -> None:
    led = make_ledger()
    assert led.by_component() == pytest.approx({
        "system.cxl.link0": 0.25,
        "system.dram.ch0": 11.0,
        "system.dram.ch1": 10.0,
        "system.dramcache": 1.0,
    })
    assert led.component_pj("system.dram") == pytest.approx(21.0)  # not system.dramcache
    assert led.component_pj("system") == pytest.approx(22.25)
    assert led.component_pj("system.dram", kind="act") == pytest.approx(5.0)
    assert led.component_pj("nothing") == 0.0


def test_to_dict_and_round_trip() -> None:
    led = make_ledger()
    d = led.to_dict()
    assert d["unit"] == "pJ"
    assert d["total"] == pytest.approx(22.25)
    assert d["components"] == {
        "system.cxl.link0": {"io": 0.25},
        "system.dram.ch0": {"act": 5.0, "read": 6.0},
        "system.dram.ch1": {"refresh": 10.0},
        "system.dramcache": {"sram": 1.0},
    }
    assert d["by_kind"]["refresh"] == 10.0
    assert d["by_component"]["system.dram.ch0"] == 11.0
    back = EnergyLedger.from_dict(json.loads(json.dumps(d)))
    assert back == led
    assert back.total_pj() == pytest.approx(22.25)
    with pytest.raises(ValueError):
        EnergyLedger.from_dict({"unit": "nJ", "components": {}})


def test_summary_nj() -> None:
    led = EnergyLedger()
    led.book("a", "act", 1500.0)
    led.book("b", "io", 500.0)
    assert led.summary_nj() == pytest.approx({"energy_total_nJ": 2.0, "energy_act_nJ": 1.5, "energy_io_nJ": 0.5})
    assert list(led.summary_nj()) == ["energy_total_nJ", "energy_act_nJ", "energy_io_nJ"]
    assert pj_to_nj(2500.0) == pytest.approx(2.5)


def test_merge() -> None:
    a = make_ledger()
    b = EnergyLedger()
    b.book("system.dram.ch0", "act", 1.0)
    b.book("system.ssd0", "background", 100.0)
    a.merge(b)
    assert a.get("system.dram.ch0", "act") == 6.0
    assert a.get("system.ssd0", "background") == 100.0
    assert a.total_pj() == pytest.approx(123.25)
    assert a.by_kind()["background"] == 100.0
    # other is unchanged
    assert b.total_pj() == pytest.approx(101.0)
    assert len(b) == 2


def test_merge_equals_combined_booking() -> None:
    x = EnergyLedger()
    y = EnergyLedger()
    both = EnergyLedger()
    for i in range(10):
        x.book(f"c{i % 3}", "read", 0.5 * i)
        both.book(f"c{i % 3}", "read", 0.5 * i)
    for i in range(7):
        y.book(f"c{i % 2}", "write", 2.0)
        both.book(f"c{i % 2}", "write", 2.0)
    merged = x.copy().merge(y)
    assert merged == both
    assert merged.to_dict() == both.to_dict()
    assert merged.by_kind() == {"read": 22.5, "write": 14.0}
    assert merged.by_component() == both.by_component()
    assert merged.get("c0", "write") == 8.0
    assert x.by_kind() == {"read": 22.5}  # copy() kept x intact


def test_empty_ledger() -> None:
    led = EnergyLedger()
    assert led.total_pj() == 0.0
    assert led.by_kind() == {}
    assert led.by_component() == {}
    assert led.to_dict() == {"unit": "pJ", "total": 0.0, "by_kind": {}, "by_component": {}, "components": {}}
    assert led.summary_nj() == {"energy_total_nJ": 0.0}
    assert not led
