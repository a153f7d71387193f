"""`archsim plot` and the figures API: files written, columns checked, CDFs from stored histograms."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from archsim.cli import main
from archsim.config import InputError
from archsim.report import figures as F

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sweep_csv(tmp_path: Path) -> Path:
    rows = []
    for ch in (2, 4, 8):
        for bs in (64, 256):
            for seed in (0, 1):
                rows.append({"point": f"{ch}-{bs}-{seed}", "hw.dram.org.channels": ch,
                             "workload.batch_size": bs, "seed": seed, "status": "ok", "error": "",
                             "lookups_per_s": ch * 1e8 + bs * 1e5 + seed * 1e6,
                             "energy_per_lookup_dram_act_nJ": 4.0, "energy_per_lookup_dram_read_nJ": 2.0,
                             "energy_per_lookup_llc_sram_nJ": 1.0 + ch / 8})
    rows.append({"point": "bad", "hw.dram.org.channels": 3, "workload.batch_size": 64, "seed": 0,
                 "status": "failed", "error": "x.yaml:3: dram.org.channels: must be a power of two"})
    d = tmp_path / "sweep"
    d.mkdir()
    pd.DataFrame(rows).to_csv(d / "results.csv", index=False)
    return d


def test_line_bar_stacked_written(sweep_csv: Path, capsys) -> None:
    for kind, extra in (("line", ["--hue", "workload.batch_size"]), ("bar", ["--hue", "workload.batch_size"]),
                        ("stacked", [])):
        y = "energy_per_lookup_*_*_nJ" if kind == "stacked" else "lookups_per_s"
        out = sweep_csv / f"fig_{kind}"
        assert main(["plot", str(sweep_csv), "--x", "hw.dram.org.channels", "--y", y, "--kind", kind,
                     "--out", str(out), *extra]) == 0
        for ext in ("pdf", "png"):
            p = out.with_suffix(f".{ext}")
            assert p.exists() and p.stat().st_size > 5000, p


def test_line_aggregates_repeats_and_skips_failed(sweep_csv: Path) -> None:
    df = F.load_results(sweep_csv)
    fig = F.line(df, "hw.dram.org.channels", "lookups_per_s", hue="workload.batch_size")
    ax = fig.axes[0]
    lines = [c.lines[0] for c in ax.containers]
    assert len(lines) == 2 and all(len(ln.get_xdata()) == 3 for ln in lines)  # one per batch size; the failed 3-channel point is left out
    ys = sorted(lines[0].get_ydata())
    assert ys[0] == pytest.approx(2e8 + 64e5 + 0.5e6)  # the mean over the two seeds


def test_missing_column_is_a_clean_error(sweep_csv: Path, capsys) -> None:
    rc = main(["plot", str(sweep_csv), "--x", "hw.dram.org.channels", "--y", "nosuch"])
    err = capsys.readouterr().err
    assert rc == 2 and "no column 'nosuch'" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError):
        F.load_results(sweep_csv / "nothing.csv")


def test_cdf_from_run_directories(tmp_path: Path, capsys) -> None:
    runs = []
    for ch in (2, 8):
        out = tmp_path / f"ch{ch}"
        assert main(["run", str(ROOT / "hwconfigs" / "cpu_ddr4.yaml"), "--workload",
                     str(ROOT / "workloads" / "zipf_small.yaml"), "--workload-set", "num_batches=2",
                     "--set", f"dram.org.channels={ch}", "--out", str(out), "--quiet"]) == 0
        runs.append(str(out))
    base = tmp_path / "cdf"
    assert main(["plot", *runs, "--kind", "cdf", "--y", "host.bag_latency_ps", "--out", str(base)]) == 0
    assert base.with_suffix(".png").exists()
    rc = main(["plot", *runs, "--kind", "cdf", "--y", "host.nosuch"])
    assert rc == 2 and "no histogram 'host.nosuch'" in capsys.readouterr().err
