"""Bounded resources (issue #12, item 7): traces and workloads stream; nothing holds a whole trace.

Peak memory is measured per child process with ``os.wait4``'s ``ru_maxrss`` (KiB on Linux), so the test
process's own imports and fixtures do not count.

- 10^7 lines of a memory trace stream through the DDR4 model under 500 MB.
- 10^8 embedding lookups (610 batches of criteo_zipf) stream out of the workload generator under 500 MB.
- The CPU baseline's peak memory does not grow with the number of batches: once its last-level cache's tag
  array is full (a 1.5 MiB LLC here, so it fills in the first batch), 8 batches peak within a few MB of 2.
  The full 10^8 lookups through the simulated CPU baseline take about an hour at today's speed (issue #15);
  ``make soak`` runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

if not hasattr(os, "wait4"):  # pragma: no cover - Linux and macOS have it
    pytest.skip("needs os.wait4 for a child's peak memory", allow_module_level=True)

LIMIT_KIB = 500 * 1000  # 500 MB


def _peak_kib(argv: list[str], **kw) -> tuple[int, int, str]:
    """Run ``argv``; its exit status, peak resident memory (KiB) and stderr."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss, err


def _write_trace(path, lines: int, chunk: int = 1_000_000) -> None:
    """``lines`` random 64-byte-aligned reads within the first 4 GiB, Ramulator format, written in chunks."""
    rng = np.random.default_rng(12)
    with open(path, "w") as f:
        for start in range(0, lines, chunk):
            n = min(chunk, lines - start)
            addrs = rng.integers(0, 1 << 26, size=n) << 6
            f.write("\n".join(f"{a:#x} R" for a in addrs.tolist()))
            f.write("\n")


def test_ten_million_trace_lines_stream_through_dram(tmp_path):
    trace = tmp_path / "big.trace"
    _write_trace(trace, 10_000_000)
    rc, peak, err = _peak_kib([sys.executable, "-m", "archsim.cli", "run", "hwconfigs/dram_ddr4_dramsim3.yaml",
                               "--trace", str(trace), "--quiet", "--out", str(tmp_path / "o")])
    assert rc == 0, err
    summary = (tmp_path / "o" / "summary.csv").read_text()
    assert "10000000" in summary  # every request was served
    assert peak < LIMIT_KIB, f"peak {peak / 1000:.0f} MB for a 10^7-line trace"


def test_hundred_million_lookups_stream_out_of_the_generator():
    code = textwrap.dedent("""
        from archsim.workload.spec import load_workload
        from archsim.workload.batches import iter_batches
        spec = load_workload("criteo_zipf", overrides=["num_batches=611"])
        n = 0
        for b in iter_batches(spec):
            n += sum(len(i) for i in b.indices)
        assert n >= 10**8, n
        print(n)
    """)
    rc, peak, err = _peak_kib([sys.executable, "-c", code])
    assert rc == 0, err
    assert peak < LIMIT_KIB, f"peak {peak / 1000:.0f} MB for 10^8 lookups"


@pytest.mark.parametrize("arch,sets", [
    ("cpu_ddr4", ["--set", "host.llc.size_kib=1536"]),  # the compiled host engine
    ("recross", []),  # the compiled NMP engine
    ("cxl_pool", ["--set", "host.llc.size_kib=1920"]),  # the host engine's compiled CXL path
    ("pifs_rec", []),  # the compiled PIFS-Rec engine
])
def test_cpu_baseline_memory_does_not_grow_with_batches(tmp_path, arch: str, sets: list[str]):
    def peak(batches: int) -> int:
        rc, kib, err = _peak_kib([
            sys.executable, "-m", "archsim.cli", "run", arch, "--workload", "criteo_zipf",
            "--workload-set", f"num_batches={batches}", "--workload-set", "batch_size=32",
            *sets, "--quiet", "--out", str(tmp_path / f"o{batches}")])
        assert rc == 0, err
        return kib

    few, many = peak(2), peak(8)
    # one batch of 32 bags is 20,480 lookups, about 2.5 MB of line addresses: keeping every batch would add 15 MB
    assert many - few < 6000, f"peak {few / 1000:.1f} MB at 2 batches, {many / 1000:.1f} MB at 8"
