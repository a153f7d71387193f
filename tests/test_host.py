"""The CPU host over DRAM: closed-form checks of throughput, per-bag latency and LLC hit rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsim import validation
from archsim.system.builder import run_embedding
from archsim.system.config import load_system

CFG = "hwconfigs/cpu_ddr4.yaml"


def test_uniform_lookups_reach_the_dram_random_access_limit() -> None:
    """Pooling 1, 64 B rows, a table far larger than the LLC: lookups/s within 10% of the DRAM model's own
    random-read rate (same address range, window 0, only the controller queues limiting)."""
    c = validation.host_random_limit_check()
    assert c.ok, c
    assert c.archsim < c.reference * 1.02  # the host cannot beat the memory


def test_one_fill_buffer_bag_takes_pooling_times_load_latency() -> None:
    """With one line miss in flight per core, a bag of P rows takes P loaded read latencies (plus pooling),
    and a load takes the LLC tag check + the wire each way + the DRAM's own read latency."""
    bag, load = validation.host_serial_bag_check(pooling=8)
    assert bag.ok and load.ok, (bag, load)


def test_zipf_llc_hit_rate_matches_che(tmp_path) -> None:
    """Zipf s=1.2 (the workload generator's sampler) over a table much larger than a 64 KiB LLC: the hit rate
    is within 2 points of Che's approximation of an LRU cache of the same 1024 lines."""
    c = validation.llc_che_check(1.2, tmp_dir=tmp_path)
    assert c.ok, c
    assert 0.5 < c.reference < 0.95  # a regime where the cache matters


@pytest.mark.parametrize("cfg_name, sets", [("cpu_ddr4.yaml", ["dram.org.channels=2"]),
                                            ("cpu_ddr4.yaml", ["host.llc.size_kib=48", "host.fill_buffers=4"]),
                                            ("cpu_ddr5.yaml", [])])
def test_compiled_and_python_engines_agree_on_embedding_runs(monkeypatch, cfg_name, sets) -> None:
    """The host drives the DRAM through submit/can_accept/space_event with many channels and an LLC: both
    channel engines give the same stats tree, energy and end time."""
    from archsim.dram import controller
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    if controller._cchannel is None:
        pytest.skip("compiled engine not built")
    wl = load_workload(str(Path(CFG).parent.parent / "workloads" / "zipf_small.yaml"), ["num_batches=3"])
    out = {}
    for eng in ("python", "c"):
        monkeypatch.setenv("ARCHSIM_ENGINE", eng)
        cfg, _ = load_system(str(Path(CFG).parent / cfg_name), sets)
        system, end_ps = run_embedding(cfg, wl.table_list(), iter_batches(wl))
        out[eng] = (end_ps, system.sim.stats.to_dict(raw=True), system.sim.energy.to_dict())
    assert out["python"] == out["c"]
