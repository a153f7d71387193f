"""``make soak``: 10^8 embedding lookups (611 batches of criteo_zipf) through the simulated CPU baseline, with
its peak memory (issue #12, item 7). It takes about an hour at today's speed, so it is not part of ``make test``
(tests/test_bounded_memory.py checks there that peak memory does not grow with the number of batches).

Prints the peak resident memory and exits 1 when it is 500 MB or more."""

from __future__ import annotations

import os
import subprocess
import sys
import time

LIMIT_KIB = 500 * 1000


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else "results/soak"
    t0 = time.time()
    p = subprocess.Popen([sys.executable, "-m", "archsim.cli", "run", "cpu_ddr4", "--workload", "criteo_zipf",
                          "--workload-set", "num_batches=611", "--quiet", "--out", out])
    _, status, usage = os.wait4(p.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss
    print(f"soak: 611 batches x 163,840 lookups on cpu_ddr4: exit {rc}, peak {peak / 1000:.0f} MB, "
          f"{time.time() - t0:.0f} s wall")
    return 0 if rc == 0 and peak < LIMIT_KIB else 1


if __name__ == "__main__":
    sys.exit(main())
