"""A host with its tables on CXL expanders behind a switch (hwconfigs/cxl_pool.yaml): the idle load through the
fabric costs the parts of the path over a local load, every line crosses the links, and a bad fabric is refused
with one line naming file:line and key path."""

from __future__ import annotations

import re

import pytest

from archsim.config import ConfigError
from archsim.system.builder import run_embedding
from archsim.system.config import load_system
from archsim.validation import REPO_ROOT, SyntheticTable, uniform_batches

POOL = str(REPO_ROOT / "hwconfigs" / "cxl_pool.yaml")
ROWS = 1 << 16


def _one_load(cfg_path: str, sets: list[str]) -> tuple[float, object]:
    cfg, _ = load_system(cfg_path, sets)
    system, _ = run_embedding(cfg, [SyntheticTable("t", ROWS, 16)], uniform_batches(ROWS, 1, 1, 1))
    return system.operator.line_latency.mean(), system


def test_idle_load_through_the_switch_costs_its_parts() -> None:
    """One 64 B row, idle system: a load from CXL memory takes a local load's path plus the host link (ports,
    PHYs, serialisation of MemRd and of the data response), two switch traversals, the downstream link, and the
    expander's controller; the two DRAMs are the same DDR5-4800 device (the arrival's phase against the DRAM
    clock may differ by one clock)."""
    local, _ = _one_load(POOL, ["layout.memory=local", "layout.policy=contiguous"])
    far, system = _one_load(POOL, [])
    fab = system.fabric
    host_link = fab.host_ports["sw0.port0"]
    down = next(lk for lk in fab.links if lk.name.endswith("port1.link"))
    sw = fab.switches["sw0"]
    exp = fab.expanders["exp0"]
    parts = host_link.idle_latency_ps(0) + down.idle_latency_ps(0) + 2 * sw.fwd_ps + exp.controller_ps
    tck = system.dram.spec.timing.tCK_ps
    assert abs((far - local) - parts) <= tck
    assert 150_000 < parts < 200_000  # ~171 ns over local DRAM through one switch (Pond's 70-90 ns is direct)
    assert system.dram.stats["reads"] == 0  # nothing from local DRAM
    assert exp.reads == 1


def test_every_miss_crosses_the_host_link_and_the_switch() -> None:
    cfg, _ = load_system(POOL, ["host.llc=null"])
    tables = [SyntheticTable(f"t{i}", ROWS, 64) for i in range(4)]
    system, end_ps = run_embedding(cfg, tables, uniform_batches(ROWS, 64, 8, 1, tables=4))
    fab = system.fabric
    host_link = fab.host_ports["sw0.port0"]
    lines = system.operator.lookups * 4  # 256 B rows, no LLC: every line is read once per lookup
    assert host_link.s2m.payload_bytes == lines * 64
    per_exp = [fab.expanders[f"exp{i}"].bytes for i in range(4)]
    assert sum(per_exp) == lines * 64
    assert all(b > 0 for b in per_exp)  # device_per_table: one table per expander
    assert system.dram.stats["reads"] == 0


@pytest.mark.parametrize("yaml_tail, key, words", [
    ("cxl:\n  switches:\n    - name: sw0\n      ports:\n        - {role: upstream}\n"
     "        - {role: downstream, target: exp9}\n", "cxl.switches[0].ports[1].target", "points at nothing"),
    ("cxl:\n  expanders:\n" + "".join(f"    - {{name: exp{i}, base: {b}GiB, dram: {{extends: ddr5_4800_16gb_x8}}}}\n"
                                        for i, b in enumerate((256, 264, 288, 304))),
     "cxl.switches[0].ports[2].target", "overlaps"),
    ("cxl:\n  switches:\n    - name: sw0\n      ports:\n        - {role: upstream, link: {generation: pcie6, "
     "flit_bytes: 68}}\n", "cxl.switches[0].ports[0].link.flit_bytes", "flit"),
    ("cxl:\n  expanders:\n" + "".join(f"    - {{name: exp{i}, base: {b}GiB, dram: {{extends: ddr5_4800_16gb_x8}}}}\n"
                                        for i, b in enumerate((1, 272, 288, 304))),
     "cxl.expanders[0].base", "local DRAM"),
    ("cxl: null\n", "layout.memory", "cxl"),
])
def test_bad_fabric_is_refused_with_file_line_and_key(tmp_path, yaml_tail, key, words) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(f"extends: {POOL}\n{yaml_tail}")
    with pytest.raises(ConfigError) as exc:
        load_system(f)
    msg = str(exc.value)
    # the file and line of the offending value (this file's, or cxl_pool.yaml's where the value comes from)
    assert re.match(r"^\S+\.yaml:\d+: ", msg), msg
    assert key in msg and words in msg and "\n" not in msg


def test_two_hosts_pooling_contend_in_the_fabric() -> None:
    """hwconfigs/cxl_pool_2hosts.yaml: each host runs its own stream on its own upstream port; sharing the
    switch's downstream ports and the expanders, each host's batches take longer than one host's alone, the
    pool as a whole serves more lookups per second than one host, and both hosts' counts add up."""
    tables = [SyntheticTable(f"t{i}", ROWS, 64) for i in range(4)]
    out = {}
    for name in ("cxl_pool", "cxl_pool_2hosts"):
        cfg, _ = load_system(str(REPO_ROOT / "hwconfigs" / f"{name}.yaml"), ["host.llc=null"])
        more = [uniform_batches(ROWS, 32, 20, 2, seed=1 + i, tables=4) for i in range(1, cfg.hosts)]
        system, end_ps = run_embedding(cfg, tables, uniform_batches(ROWS, 32, 20, 2, seed=1, tables=4),
                                       more_batches=more)
        out[name] = (system, end_ps)
    one, t1 = out["cxl_pool"]
    two, t2 = out["cxl_pool_2hosts"]
    assert len(two.operators) == 2 and two.operators[1].lookups == one.operator.lookups
    for op in two.operators:
        assert op.batch_latency.mean() > 1.1 * one.operator.batch_latency.mean()
    assert 2 * one.operator.lookups / t2 > 1.2 * one.operator.lookups / t1  # the pool serves more in all
    fab = two.fabric
    assert fab.host_ports["sw0.port0"].s2m.payload_bytes > 0 and fab.host_ports["sw0.port1"].s2m.payload_bytes > 0
    assert two.sim.stats["host1.lines"] > 0  # host 1's own stats group


@pytest.mark.parametrize("sets, words", [(["cxl=null", "layout.memory=local"], "no cxl: section"),
                                         (["hosts=3"], "free host ports")])
def test_hosts_need_a_fabric_with_their_ports(sets, words) -> None:
    with pytest.raises(ConfigError) as exc:
        load_system(str(REPO_ROOT / "hwconfigs" / "cxl_pool_2hosts.yaml"), sets)
    assert "hosts" in str(exc.value) and words in str(exc.value)


def test_interleaved_expanders_spread_a_table(tmp_path) -> None:
    """cxl.interleave_bytes: the expanders form one window interleaved at 4 KiB; a single table's rows spread
    over all four expanders evenly, and the host and PIFS units both find every line (same bytes read)."""
    tables = [SyntheticTable("t0", ROWS, 64)]
    per_exp = {}
    for path in (POOL, str(REPO_ROOT / "hwconfigs" / "pifs_rec.yaml")):
        cfg, _ = load_system(path, ["cxl.interleave_bytes=4096", "layout.policy=contiguous", "host.llc=null",
                                    "cxl.pifs.buffer_kib=0"] if "pifs" in path else
                             ["cxl.interleave_bytes=4096", "layout.policy=contiguous", "host.llc=null"])
        assert cfg.cxl.windows() == [(256 << 30, 320 << 30)]
        system, _ = run_embedding(cfg, tables, uniform_batches(ROWS, 64, 40, 1))
        got = [system.fabric.expanders[f"exp{i}"].bytes for i in range(4)]
        per_exp[path] = got
        assert sum(got) == 64 * 40 * 256
        assert min(got) > 0.8 * max(got)  # 16 MiB table over 4 KiB granules: even spread
    a, b = per_exp.values()
    assert a == b  # the same rows read from the same expanders, by the host or by the switch's units


def test_interleave_needs_adjacent_equal_expanders(tmp_path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(f"extends: {POOL}\ncxl:\n  interleave_bytes: 3000\n")
    with pytest.raises(ConfigError, match="cxl.interleave_bytes.*power of two"):
        load_system(f)


@pytest.mark.parametrize("name", ["cxl_pool", "pifs_rec", "cxl_pool_2hosts"])
def test_engines_agree_with_several_memory_systems(monkeypatch, name) -> None:
    """A host's DRAM and four expanders' DRAMs in one run: the compiled engine (one cycle loop for every
    channel of the same clock) gives the Python reference's stats tree, energy and end time."""
    from archsim.dram import controller

    if controller._cchannel is None:
        pytest.skip("compiled engine not built")
    tables = [SyntheticTable(f"t{i}", ROWS, 64) for i in range(4)]
    out = {}
    for eng in ("python", "c"):
        monkeypatch.setenv("ARCHSIM_ENGINE", eng)
        cfg, _ = load_system(str(REPO_ROOT / "hwconfigs" / f"{name}.yaml"), ["host.llc=null"])
        more = [uniform_batches(ROWS, 8, 10, 1, seed=1 + i, tables=4) for i in range(1, cfg.hosts)]
        system, end_ps = run_embedding(cfg, tables, uniform_batches(ROWS, 8, 10, 1, tables=4), more_batches=more)
        out[eng] = (end_ps, system.sim.stats.to_dict(raw=True), system.sim.energy.to_dict())
    assert out["python"] == out["c"]
