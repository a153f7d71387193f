"""Requests larger than one burst (an NMP instruction's embedding row): one queue entry per burst at
consecutive addresses, the request completing with its last burst, in both channel engines."""

from __future__ import annotations

import pytest

from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.dram import controller
from archsim.dram.memory import DRAMSystem
from archsim.system.config import load_system

DDR4 = "hwconfigs/dram_ddr4_dramsim3.yaml"
ENGINES = ["python"] + (["c"] if controller._cchannel is not None else [])


def _system(monkeypatch, engine: str, *overrides: str) -> tuple[DRAMSystem, dict, int]:
    monkeypatch.setenv("ARCHSIM_ENGINE", engine)
    cfg, _ = load_system(DDR4, overrides=["dram.controller.refresh.policy=none", *overrides])
    sim = Simulator(0)
    return DRAMSystem(sim, cfg.dram), cfg.dram.timing.resolved(cfg.dram.org.burst_length), cfg.dram.timing.tCK_ps


def _run(mem: DRAMSystem, reqs: list[MemRequest], arrive_ps: int) -> None:
    env = mem.env

    def proc():
        yield env.timeout(arrive_ps)
        for r in reqs:
            assert mem.can_accept(r)
            mem.submit(r)

    env.process(proc())
    env.run()
    mem.finalize()


@pytest.mark.parametrize("engine", ENGINES)
def test_four_burst_read_to_a_closed_bank(monkeypatch, engine: str) -> None:
    """ACT, then four RDs nCCD_L apart (same bank group) to one row: the request completes with the last
    burst's data, ``1 + nRCD + 3 * nCCD_L + nCL + nBL`` cycles after it was accepted."""
    mem, t, tck = _system(monkeypatch, engine)
    req = MemRequest(0, False, 4 * mem.burst_bytes)
    _run(mem, [req], 10 * tck - 1)
    assert req.t_accept == 10 * tck
    ccd = max(t["nCCD_L"], t["nBL"])
    assert req.t_done - req.t_accept == (1 + t["nRCD"] + 3 * ccd + t["nCL"] + t["nBL"]) * tck
    ch = mem.channels[0]
    assert ch.n_reads == 4 and ch.n_row_hits == 3 and ch.n_cmd[0] == 1  # four bursts, one ACT
    assert mem.stats["bytes"] == 4 * mem.burst_bytes


@pytest.mark.parametrize("engine", ENGINES)
def test_a_multi_burst_request_equals_its_bursts(monkeypatch, engine: str) -> None:
    """Bit for bit the same channel as the same bursts submitted one by one, and the request completes when
    the latest of them does."""
    out = []
    for split in (False, True):
        mem, _t, tck = _system(monkeypatch, engine)
        b = mem.burst_bytes
        rows = [0, 3 << 20, 7 << 22]  # different rows and banks
        if split:
            reqs = [MemRequest(a + k * b, False, b) for a in rows for k in range(3)]
        else:
            reqs = [MemRequest(a, False, 3 * b) for a in rows]
        _run(mem, reqs, 5 * tck - 1)
        done = [r.t_done for r in reqs]
        if split:
            done = [max(done[i:i + 3]) for i in range(0, len(done), 3)]
        out.append((done, mem.sim.stats.to_dict(raw=True), mem.sim.energy.to_dict()))
    assert out[0] == out[1]


def test_engines_agree_on_multi_burst_requests(monkeypatch) -> None:
    if len(ENGINES) < 2:
        pytest.skip("compiled engine not built")
    res = []
    for eng in ENGINES:
        mem, _t, tck = _system(monkeypatch, eng, "dram.controller.read_queue=4")
        env = mem.env
        reqs = [MemRequest((i * 7919 % 512) << 12, False, (1 + i % 4) * mem.burst_bytes) for i in range(200)]

        def feed(reqs=reqs, mem=mem, env=env, tck=tck):
            for r in reqs:
                while not mem.can_accept(r):
                    yield mem.space_event(r)
                mem.submit(r)
                yield env.timeout(3 * tck)

        env.process(feed())
        env.run()
        mem.finalize()
        res.append(([(r.t_accept, r.t_done) for r in reqs], mem.sim.stats.to_dict(raw=True)))
    assert res[0] == res[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_request_across_channels_is_refused(monkeypatch, engine: str) -> None:
    mem, _t, _tck = _system(monkeypatch, engine, "dram.org.channels=2", "dram.mapping.order=RoBaRaCoCh")
    req = MemRequest(0, False, 2 * mem.burst_bytes)  # line-interleaved channels: the second burst is on ch1
    mem.can_accept(req)
    with pytest.raises(ValueError, match="one channel"):
        mem.submit(req)
