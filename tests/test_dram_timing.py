"""Exact command-level timing of the DRAM model, in picoseconds, against JEDEC / DRAMsim3 semantics.

Conventions (DRAMsim3's): a request arriving in (``(a-1)*tCK``, ``a*tCK``] is accepted at cycle ``a`` (the first edge strictly
after its arrival), moves into its bank's command queue at the end of
cycle ``a`` (one transaction per cycle), so its first command can issue at ``a + 1``; one command issues per
cycle per channel (a row and a column command with HBM dual issue); a read returns its data at
``RD + nAL + nCL + nBL``; a posted write is acknowledged at ``a + 1``; the picosecond time of cycle ``c`` is
``c * tCK_ps``. Every expected value below is derived from the timing parameters of the loaded configuration.
"""

from __future__ import annotations

import pytest

from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.dram.memory import DRAMSystem
from archsim.dram.standard import ACT, COMMANDS, PRE, RD, RDA, REF, WR
from archsim.system.config import load_system

DDR4 = "hwconfigs/dram_ddr4_dramsim3.yaml"
HBM2 = "hwconfigs/dram_hbm2_dramsim3.yaml"
TCK = "dram.timing.tCK_ps=625"
NO_REF = "dram.controller.refresh.policy=none"


class Bench:
    """A DRAM system, its resolved timing, and a trace of the commands channel ``ch`` issues."""

    def __init__(self, path: str, *overrides: str, ch: int = 0) -> None:
        cfg, _ = load_system(path, overrides=list(overrides))
        self.spec = cfg.dram
        self.t = cfg.dram.timing.resolved(cfg.dram.org.burst_length)
        self.tck = cfg.dram.timing.tCK_ps
        self.sim = Simulator(0)
        self.env = self.sim.env
        self.mem = DRAMSystem(self.sim, cfg.dram)
        self.ch = ch
        self.ctl = self.mem.channels[ch]
        self.log: list[tuple[str, int, int]] = []  # (command, flat bank, cycle)
        issue = self.ctl._issue

        def traced(cmd, fb, req, c):
            self.log.append((COMMANDS[cmd], fb, c))
            issue(cmd, fb, req, c)

        self.ctl._issue = traced

    def fb(self, ra: int, bg: int, ba: int) -> int:
        org = self.spec.org
        return (ra * org.bankgroups + bg) * org.banks_per_group + ba

    def req(self, ra: int, bg: int, ba: int, row: int, col: int = 0, write: bool = False) -> MemRequest:
        return MemRequest(self.mem.mapper.encode(self.ch, ra, bg, ba, row, col), is_write=write)

    def at(self, cycle: int, *reqs: MemRequest) -> None:
        """Submit ``reqs`` (in order) so that they are accepted at ``cycle`` (>= 1).

        A request enters at the first edge strictly after its arrival, so they arrive 1 ps before the edge.
        """
        assert cycle >= 1

        def proc():
            yield self.env.timeout(cycle * self.tck - 1 - self.env.now)
            for r in reqs:
                assert self.mem.can_accept(r)
                self.mem.submit(r)

        self.env.process(proc())

    def run(self, until_cycle: int | None = None) -> None:
        self.env.run(until=None if until_cycle is None else until_cycle * self.tck)
        self.mem.finalize()

    def cycles(self, name: str, fb: int | None = None) -> list[int]:
        return [c for n, b, c in self.log if n == name and (fb is None or b == fb)]

    def n(self, cmd: int) -> int:
        return self.ctl.n_cmd[cmd]


def ddr4(*overrides: str) -> Bench:
    return Bench(DDR4, TCK, *overrides)


# ------------------------------------------------------------------------------------------- 1. closed bank
@pytest.mark.parametrize("offset_ps,al", [(0, 0), (1, 0), (624, 0), (0, 21)])
def test_read_to_closed_bank(offset_ps, al):
    b = ddr4(NO_REF, f"dram.timing.nAL={al}")  # AL = CL - 1: RD posted right after ACT, same latency
    assert b.t["nAL"] == al
    t, tck = b.t, b.tck
    a = 100  # arrives offset_ps before cycle a's edge: accepted at a; exactly on the edge: at a + 1
    r = b.req(0, 1, 2, row=77, col=5)

    def proc():
        yield b.env.timeout(a * tck - offset_ps)
        b.mem.submit(r)

    b.env.process(proc())
    b.run()
    acc = a if offset_ps > 0 else a + 1
    assert r.t_submit == a * tck - offset_ps
    assert r.t_accept == acc * tck
    act, rd = acc + 1, acc + 1 + t["nRCDRD"] - t["nAL"]
    assert b.log == [("ACT", b.fb(0, 1, 2), act), ("RD", b.fb(0, 1, 2), rd)]
    assert r.t_done == (rd + t["nAL"] + t["nCL"] + t["nBL"]) * tck
    assert r.t_done - r.t_accept == (1 + t["nRCD"] + t["nCL"] + t["nBL"]) * tck
    assert b.ctl.n_row_hits == 0 and b.n(ACT) == 1 and b.n(RD) == 1


# ------------------------------------------------------------------------------------------- 2. row hit
def test_row_hit_latency():
    b = ddr4(NO_REF)
    t, tck = b.t, b.tck
    r1, r2 = b.req(0, 2, 1, row=300, col=0), b.req(0, 2, 1, row=300, col=9)
    b.at(1, r1)
    done1 = 2 + t["nRCD"] + t["nCL"] + t["nBL"]
    a2 = done1 + 10
    b.at(a2, r2)
    b.run()
    assert r1.t_done == done1 * tck
    assert r2.t_accept == a2 * tck
    assert r2.t_done - r2.t_accept == (1 + t["nCL"] + t["nBL"]) * tck
    assert b.cycles("RD") == [2 + t["nRCD"], a2 + 1]
    assert b.n(ACT) == 1 and b.n(PRE) == 0 and b.ctl.n_row_hits == 1


# ------------------------------------------------------------------------------------------- 3. row conflict
def test_row_conflict_latency():
    b = ddr4(NO_REF)
    t, tck = b.t, b.tck
    r1, r2 = b.req(0, 3, 3, row=1000), b.req(0, 3, 3, row=1001)
    b.at(1, r1)
    act1, rd1 = 2, 2 + t["nRCD"]
    done1 = rd1 + t["nCL"] + t["nBL"]
    pre_ok = max(act1 + t["nRAS"], rd1 + t["nAL"] + t["nRTP"])  # ACT->PRE tRAS, RD->PRE AL + tRTP
    a2 = max(done1, pre_ok) + 5
    assert a2 + 1 >= act1 + t["nRAS"] and a2 + 1 >= rd1 + t["nAL"] + t["nRTP"]
    assert a2 + 1 + t["nRP"] >= act1 + t["nRC"]  # tRC does not bind the second ACT either
    b.at(a2, r2)
    b.run()
    assert r1.t_done == done1 * tck
    pre, act2 = a2 + 1, a2 + 1 + t["nRP"]
    rd2 = act2 + t["nRCD"]
    assert b.log[2:] == [("PRE", b.fb(0, 3, 3), pre), ("ACT", b.fb(0, 3, 3), act2),
                         ("RD", b.fb(0, 3, 3), rd2)]
    assert r2.t_done - r2.t_accept == (1 + t["nRP"] + t["nRCD"] + t["nCL"] + t["nBL"]) * tck
    assert b.n(ACT) == 2 and b.n(PRE) == 1 and b.n(RD) == 2 and b.ctl.n_row_hits == 0


def test_row_conflict_precharge_waits_for_tras():
    """Submitted right after the first read's data returned, the PRE still waits for ACT + nRAS."""
    b = ddr4(NO_REF)
    t, tck = b.t, b.tck
    r1, r2 = b.req(0, 0, 2, row=4), b.req(0, 0, 2, row=5)
    b.at(1, r1)
    done1 = 2 + t["nRCD"] + t["nCL"] + t["nBL"]
    a2 = done1 + 1
    pre = max(a2 + 1, 2 + t["nRAS"], 2 + t["nRCD"] + t["nAL"] + t["nRTP"])
    assert pre > a2 + 1  # tRAS binds in this configuration
    b.at(a2, r2)
    b.run()
    assert b.cycles("PRE") == [pre]
    act2 = max(pre + t["nRP"], 2 + t["nRC"])
    assert b.cycles("ACT") == [2, act2]
    assert r2.t_done == (act2 + t["nRCD"] + t["nCL"] + t["nBL"]) * tck


# ------------------------------------------------------------------------------------------- 4. tCCD_L / tCCD_S
@pytest.mark.parametrize("bg2,ba2,ccd", [(0, 1, "nCCD_L"), (1, 0, "nCCD_S")], ids=["same_bg", "other_bg"])
def test_back_to_back_hits_ccd(bg2, ba2, ccd):
    b = ddr4(NO_REF)
    t, tck = b.t, b.tck
    b.at(1, b.req(0, 0, 0, row=10), b.req(0, bg2, ba2, row=20))  # open both rows
    a = 400
    h1, h2 = b.req(0, 0, 0, row=10, col=3), b.req(0, bg2, ba2, row=20, col=3)
    b.at(a, h1, h2)
    b.run()
    gap = max(t["nBL"], t[ccd])
    assert gap > 1  # the one-transaction-per-cycle move into the command queues does not bind
    assert h1.t_done == (a + 1 + t["nAL"] + t["nCL"] + t["nBL"]) * tck
    assert h2.t_done - h1.t_done == gap * tck
    assert b.cycles("RD")[2:] == [a + 1, a + 1 + gap]
    assert b.ctl.n_row_hits == 2 and b.n(ACT) == 2


# ------------------------------------------------------------------------------------------- 5. tFAW
def test_fifth_activate_waits_for_tfaw():
    b = ddr4(NO_REF)
    t, tck = b.t, b.tck
    # four banks in the four bank groups (tRRD_S apart), the fifth in bank group 2 again (its tRRD_L from the
    # third ACT has long elapsed). Flat bank indices 0, 4, 8, 12, 9: the fifth sits right after the third in
    # the round-robin order, which matters below.
    banks = [(0, 0), (1, 0), (2, 0), (3, 0), (2, 1)]
    reqs = [b.req(0, bg, ba, row=50 + i) for i, (bg, ba) in enumerate(banks)]
    b.at(1, *reqs)
    b.run()
    rrd, faw, rcd = t["nRRD_S"], t["nFAW"], t["nRCD"]
    tail = t["nCL"] + t["nBL"]
    ccd = max(t["nBL"], t["nCCD_S"])
    # accepted at cycle 1, request i enters its command queue at the end of cycle 1 + i
    act = [2]
    for i in range(1, 4):
        act.append(max(i + 2, act[-1] + rrd))
    act.append(max(6, act[3] + rrd, act[2] + t["nRRD_L"], act[0] + faw))
    assert act[4] == act[0] + faw > act[3] + rrd  # the window binds, not tRRD
    rd = []
    for i in range(4):
        c = max(act[i] + rcd, rd[-1] + ccd if rd else 0)
        if c == act[4]:
            # one command per cycle: round robin resumes after bank 8 (the previous command's), so the fifth
            # bank's ACT (bank 9) goes before this RD (bank 12), which slips one cycle
            c += 1
        rd.append(c)
    rd.append(act[4] + rcd)
    assert rd[4] > rd[3]
    assert b.cycles("ACT") == act
    assert [r.t_done for r in reqs] == [(c + tail) * tck for c in rd]
    # ACT times read back from completion times (a read whose RD was not held back completes nRCD + nCL + nBL
    # after its ACT)
    derived = [r.t_done // tck - (rcd + tail) for r in reqs]
    assert derived[1] - derived[0] == derived[2] - derived[1] == rrd
    assert derived[4] - derived[0] == faw
    assert b.n(ACT) == 5 and b.n(RD) == 5


# ------------------------------------------------------------------------------------------- 6. tWTR
@pytest.mark.parametrize("bg_r,ba_r,wtr", [(0, 1, "nWTR_L"), (1, 0, "nWTR_S")], ids=["same_bg", "other_bg"])
def test_write_to_read_turnaround(bg_r, ba_r, wtr):
    # drain_high = round(1/32 * 32) = 1: one buffered write starts a drain (DRAMsim3 drains at a full buffer)
    b = ddr4(NO_REF, "dram.controller.write_high_watermark=0.03125")
    assert b.ctl.drain_high == 1
    t, tck = b.t, b.tck
    b.at(1, b.req(0, 0, 0, row=7), b.req(0, bg_r, ba_r, row=8))  # open both rows
    a = 300
    w = b.req(0, 0, 0, row=7, col=1, write=True)
    r = b.req(0, bg_r, ba_r, row=8, col=1)
    b.at(a, w, r)
    b.run()
    wr = a + 1  # the write moves first (draining), the read one cycle later
    assert b.cycles("WR") == [wr]
    assert w.t_done == (a + 1) * tck  # posted
    rd = wr + t["nAL"] + t["nCWL"] + t["nBL"] + t[wtr]
    assert rd > a + 2  # the turnaround binds
    assert b.cycles("RD")[2:] == [rd]
    assert r.t_done == (rd + t["nAL"] + t["nCL"] + t["nBL"]) * tck
    assert b.n(WR) == 1 and b.ctl.n_row_hits == 2


# ------------------------------------------------------------------------------------------- 7. refresh
def test_refresh_slots_and_read_behind_refresh():
    b = ddr4()  # staggered all-bank refresh, 2 ranks
    t, tck = b.t, b.tck
    ranks = b.spec.org.ranks
    assert ranks == 2 and b.spec.controller.refresh.staggered
    interval = t["nREFI"] // ranks
    # a read to rank 0 arriving exactly when rank 0's first refresh is due (slot 1 belongs to rank 0)
    r = b.req(0, 1, 1, row=123)
    b.at(interval, r)
    k_slots = 6
    end = k_slots * interval + 100
    b.run(until_cycle=end)
    assert r.t_accept == interval * tck
    ref1 = interval
    act = ref1 + t["nRFC"]
    assert b.cycles("ACT") == [act]
    assert b.cycles("RD") == [act + t["nRCD"]]
    assert r.t_done == (ref1 + t["nRFC"] + t["nRCD"] + t["nCL"] + t["nBL"]) * tck
    # one REF per slot, ranks in turn; rank 0's next REF first precharges the row the read left open
    exp_ref, exp_pre = [], []
    row_open = True
    for k in range(1, k_slots + 1):
        rank = (k - 1) % ranks
        c = k * interval
        if rank == 0 and k > 1 and row_open:
            exp_pre.append(c)
            c += t["nRP"]
            row_open = False
        exp_ref.append((rank, c))
    got_ref = [(fb // b.spec.org.banks, c) for n, fb, c in b.log if n == "REF"]
    assert got_ref == exp_ref
    assert b.cycles("PRE") == exp_pre
    assert b.n(REF) == k_slots == sum(1 for k in range(1, 10**6) if k * interval * tck < end * tck)
    # every rank gets exactly one REF in each nREFI window from its first one on
    for rank in range(ranks):
        cyc = [c for rk, c in got_ref if rk == rank]
        first = cyc[0]
        for j in range((end - first) // t["nREFI"]):
            lo = first + j * t["nREFI"]
            assert sum(1 for c in cyc if lo <= c < lo + t["nREFI"]) == 1


def test_refresh_runs_while_idle():
    b = ddr4()
    interval = b.t["nREFI"] // b.spec.org.ranks
    k_slots = 3
    b.run(until_cycle=k_slots * interval + 100)
    got = [(fb // b.spec.org.banks, c) for n, fb, c in b.log if n == "REF"]
    assert got == [((k - 1) % 2, k * interval) for k in range(1, k_slots + 1)]


def test_first_read_after_idle_waits_one_refresh():
    b = ddr4()
    t, tck = b.t, b.tck
    interval = t["nREFI"] // b.spec.org.ranks
    a = 3 * interval + 10  # slot 3 (rank 0) refreshed at 3 * interval, per DRAMsim3
    r = b.req(0, 0, 0, row=9)
    b.at(a, r)
    b.run(until_cycle=a + 2000)
    assert r.t_done == (3 * interval + t["nRFC"] + t["nRCD"] + t["nCL"] + t["nBL"]) * tck


# ------------------------------------------------------------------------------------------- 8. closed page
def test_closed_page_policy():
    b = ddr4(NO_REF, "dram.controller.row_policy=closed")
    t, tck = b.t, b.tck
    r1, r2 = b.req(0, 1, 0, row=66, col=1), b.req(0, 1, 0, row=66, col=2)
    b.at(1, r1, r2)
    b.run()
    act1, rda1 = 2, 2 + t["nRCD"]
    act2 = max(rda1 + t["nAL"] + t["nBL"] + t["nRTP"] + t["nRP"], act1 + t["nRC"])
    rda2 = act2 + t["nRCD"]
    assert b.log == [("ACT", 4, act1), ("RDA", 4, rda1), ("ACT", 4, act2), ("RDA", 4, rda2)]
    assert r1.t_done == (rda1 + t["nCL"] + t["nBL"]) * tck
    assert r2.t_done == (rda2 + t["nCL"] + t["nBL"]) * tck
    assert b.ctl.n_row_hits == 0
    assert b.n(ACT) == 2 and b.n(RDA) == 2 and b.n(RD) == 0 and b.n(PRE) == 0


# ------------------------------------------------------------------------------------------- 9. HBM2 dual issue
@pytest.mark.parametrize("dual", [True, False])
def test_hbm2_dual_command_issue(dual):
    b = Bench(HBM2, NO_REF, f"dram.controller.dual_command_issue={str(dual).lower()}")
    t, tck = b.t, b.tck
    assert b.spec.org.ranks == 1
    b.at(1, b.req(0, 0, 0, row=1))  # open row 1 of bank 0
    a = 200
    c_req, b_req = b.req(0, 1, 0, row=2), b.req(0, 2, 0, row=3)  # two closed banks: ACTs tRRD_S apart
    hit = b.req(0, 0, 0, row=1, col=4)
    b.at(a, c_req, b_req)
    b.at(a + t["nRRD_S"], hit)  # in its command queue when the second ACT becomes ready
    b.run()
    x = a + 1 + t["nRRD_S"]  # the second ACT (bank 8) and the hit's RD (bank 0) are both ready at x
    assert b.cycles("ACT") == [2, a + 1, x]
    rd_hit = x if dual else x + 1  # single issue: round robin resumes after bank 4, reaching bank 8 first
    assert b.cycles("RD", fb=0) == [2 + t["nRCD"], rd_hit]
    assert hit.t_done == (rd_hit + t["nCL"] + t["nBL"]) * tck
    assert b_req.t_done == (x + t["nRCD"] + t["nCL"] + t["nBL"]) * tck
    assert c_req.t_done == (a + 1 + t["nRCD"] + t["nCL"] + t["nBL"]) * tck
    assert b.ctl.n_dual == (1 if dual else 0)


# ------------------------------------------------------------------------------------------- bandwidth
def test_row_hit_stream_reaches_data_bus_peak():
    b = ddr4(NO_REF)
    t, tck = b.t, b.tck
    n_bg = b.spec.org.bankgroups
    ncols = b.spec.org.columns // b.spec.org.burst_length
    b.at(1, *[b.req(0, bg, 0, row=500 + bg, col=ncols - 1) for bg in range(n_bg)])  # open the rows
    start = 1000
    n = 2000
    reqs = [b.req(0, i % n_bg, 0, row=500 + i % n_bg, col=(i // n_bg) % ncols) for i in range(n)]

    def stream():
        yield b.env.timeout(start * tck)
        for r in reqs:
            while not b.mem.can_accept(r):
                yield b.mem.space_event(r)
            b.mem.submit(r)

    b.env.process(stream())
    b.run()
    assert all(r.t_done > 0 for r in reqs)
    elapsed = max(r.t_done for r in reqs) - start * tck
    nbytes = n * b.spec.org.access_bytes
    peak = b.spec.org.access_bytes / (t["nBL"] * tck)  # bytes per ps
    assert max(t["nCCD_S"], t["nBL"]) == t["nBL"]  # round robin over bank groups: the bus is the bound
    bw = nbytes / elapsed
    assert 0.97 * peak <= bw <= peak
    assert b.ctl.n_row_hits == n and b.n(ACT) == n_bg and b.n(PRE) == 0
