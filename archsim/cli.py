"""``archsim run | sweep | plot | trace | presets | show | schema | validate | bench``: a thin layer over the API.

Exit status: 0 on success, 2 on bad input (one line on stderr naming file:line and key path; usage errors one
line with a hint to --help), 1 on an internal error (one line and the path of a file with the traceback),
3 from ``validate --strict`` when a row is outside its tolerance, 4 when ``run --max-wall`` stopped the run
(``sweep``: when a point ran past its time limit).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from archsim.config import ConfigError, InputError
from archsim.config.errors import run_guarded
from archsim.core.files import atomic_write_text

GPU_TIME_TOL = 0.20
"""``validate gpu``: a case's predicted kernel time is within this relative error of the measured one..."""
GPU_L2_TOL_POINTS = 5.0
"""... and its predicted L2 hit rate within this many percentage points of the measured one."""


class _Parser(argparse.ArgumentParser):
    """argparse with the error contract: a usage error is one line on stderr with a hint to --help, exit 2."""

    def error(self, message: str):
        self.exit(2, f"archsim: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="archsim", description="Memory-system simulator for embedding lookups.")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="simulate a memory trace or an embedding workload on a system")
    r.add_argument("config", help="hwconfig YAML file or preset name (e.g. default)")
    r.add_argument("--trace", help="memory trace (Ramulator or DRAMsim3 format, plain or .gz)")
    r.add_argument("--workload", help="embedding workload spec (workloads/*.yaml)")
    r.add_argument("--workload-set", dest="workload_overrides", action="append", default=[],
                   metavar="KEY.PATH=VALUE", help="override a workload value (repeatable)")
    r.add_argument("--window", type=int, default=0, help="most requests outstanding (0: only queues limit)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config value (repeatable)")
    r.add_argument("--seed", type=int, default=None,
                   help="run seed (default: the workload's seed; 0 for traces)")
    r.add_argument("--out", help="run directory (default results/<config-name>-<hash8>/)")
    r.add_argument("--max-wall", type=float, default=None, metavar="SECONDS",
                   help="stop the run past this many seconds of wall time: exit status 4, one line "
                        "'archsim: stopped: ran past --max-wall N s', no results written (default: no limit)")
    r.add_argument("--plot", action="store_true", help="also write a read-latency CDF plot (latency_cdf.png)")
    r.add_argument("--quiet", action="store_true", help="print nothing on success")

    sub.add_parser("presets", help="list the shipped hwconfigs and workloads, and the built-in presets")

    sh = sub.add_parser("show", help="print the component graph a hwconfig expands into")
    sh.add_argument("config", help="hwconfig YAML file or shipped name")
    sh.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                    help="override a config value (repeatable)")
    sh.add_argument("--dot", metavar="FILE", help="also write the graph as Graphviz source")

    s = sub.add_parser("schema", help="write the JSON Schema of hwconfig files")
    s.add_argument("--out", help="file to write (default: stdout)")

    v = sub.add_parser("validate", help="compare with the reference simulators (DRAMsim3, Ramulator 2); "
                                        "'validate gpu CASES.csv --out PRED.csv': the GPU model against "
                                        "measured EmbeddingBag cases")
    v.add_argument("what", nargs="?", choices=["gpu"],
                   help="gpu: predict the EmbeddingBag cases of CASES.csv on a GPU hwconfig (default: the DRAM, "
                        "host and CXL validation)")
    v.add_argument("cases", nargs="?", metavar="CASES.csv",
                   help="for gpu: one case a row, columns rows, dim, dtype, batch, pooling, dist (others kept; "
                        "kernel_time_ns and l2_hit_pct, when present, are compared with the predictions)")
    v.add_argument("--config", default=None,
                   help="for gpu: hwconfig with a gpu component (default hwconfigs/gpu_h100.yaml)")
    v.add_argument("--out", metavar="PRED.csv", help="for gpu (required): CASES.csv with the predictions added")
    v.add_argument("--protocol", choices=["kernel-replay", "cold", "steady"], default=None,
                   help="for gpu: how the measured counters were taken (docs/gpu.md, 'The measurement protocol'): "
                        "kernel-replay (default; Nsight Compute's default, as the reference measured: time, DRAM "
                        "bytes and L2 hits of the launch after the save of device memory, L2 lookups of a replay "
                        "of it), cold (the L2 emptied before the launch: --cache-control all), steady (the launch "
                        "as 14 earlier launches leave the L2: one pass, or application replay)")
    v.add_argument("--steady-state", action="store_true", help="for gpu: the same as --protocol steady")
    v.add_argument("--only", action="append", default=[], help="substring of case names to run (repeatable)")
    v.add_argument("--markdown", help="also write the table as markdown to this file")
    v.add_argument("--papers", action="store_true",
                   help="also run the papers' set-ups (RecNMP, ReCross; about a minute) against their figures")
    v.add_argument("--strict", action="store_true",
                   help="exit status 3 when a row is outside its tolerance (for CI; gpu: kernel time within "
                        f"{GPU_TIME_TOL * 100:.0f}%%, L2 hit rate within {GPU_L2_TOL_POINTS:g} points); default: report "
                        "them, exit 0")

    pl = sub.add_parser("plot", help="figures for papers from sweep or run results (PDF and PNG)")
    pl.add_argument("results", nargs="+", help="a sweep directory, a results CSV/Parquet file, or run "
                                               "directories (several for --kind cdf)")
    pl.add_argument("--x", help="column on the x axis (an axis of the sweep)")
    pl.add_argument("--y", required=True,
                    help="metric column; for --kind stacked a glob (energy_per_lookup_dram_*_nJ) or a "
                         "comma-separated list; for --kind cdf a histogram name (host.bag_latency_ps)")
    pl.add_argument("--hue", help="column whose values get one line or bar each")
    pl.add_argument("--kind", choices=["line", "bar", "stacked", "cdf"], default="line")
    pl.add_argument("--logx", action="store_true")
    pl.add_argument("--logy", action="store_true")
    pl.add_argument("--out", help="output path without extension (default: next to the results)")

    from archsim.sweep.cli import add_sweep_parser
    from archsim.workload.cli_trace import add_trace_parser

    add_sweep_parser(sub)

    add_trace_parser(sub)

    b = sub.add_parser("bench", help="simulated requests per wall-clock second on the reference DRAM traces, and "
                                      "lookups per wall second of criteo_zipf on every shipped architecture")
    b.add_argument("--out", default="results/bench.json")
    b.add_argument("--config", default=None,
                   help="DRAM hwconfig of the trace lines (default hwconfigs/dram_ddr4_dramsim3.yaml)")
    b.add_argument("--engine", choices=["c", "python"], default=None,
                   help="channel engine (default: $ARCHSIM_ENGINE, else the compiled one when built)")
    b.add_argument("--repeat", type=int, default=3, help="runs per line; the median wall time is reported")
    b.add_argument("--only", action="append", default=None, metavar="NAME[,NAME]",
                   help="run only these architectures (and traces; the random trace always runs, every "
                        "workload line is divided by it); repeatable")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cmd = {"run": _cmd_run, "presets": _cmd_presets, "schema": _cmd_schema, "validate": _cmd_validate,
           "bench": _cmd_bench, "trace": _cmd_trace, "plot": _cmd_plot, "sweep": _cmd_sweep, "show": _cmd_show}[args.cmd]
    return run_guarded(cmd, args)


EXIT_STOPPED = 4
"""Exit status of ``archsim run`` stopped by ``--max-wall`` (and of ``archsim sweep`` when a point was)."""


def check_max_wall(seconds: float | None) -> None:
    """``--max-wall``: a finite number of seconds > 0, at most ``archsim.api.MAX_WALL_S`` (InputError
    otherwise)."""
    from archsim.api import check_max_wall as check

    check(seconds, "--max-wall")


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from archsim.api import WallLimitExceeded, check_window, run

    check_window(args.window, "--window")
    check_max_wall(args.max_wall)
    try:
        with _Progress(enabled=not args.quiet) as prog:
            res = run(args.config, trace=args.trace, window=args.window, overrides=args.overrides,
                      seed=args.seed, out=args.out, write=True, workload=args.workload,
                      workload_overrides=args.workload_overrides, progress=prog.update, max_wall=args.max_wall)
    except WallLimitExceeded:
        print(f"archsim: stopped: ran past --max-wall {args.max_wall:g} s", file=sys.stderr)
        return EXIT_STOPPED
    if args.plot:
        import os

        from archsim.report.plots import latency_cdf_png

        tmp = res.out_dir / ".latency_cdf.tmp.png"  # a temporary name, then a rename: never half a file
        latency_cdf_png(res, tmp)
        os.replace(tmp, res.out_dir / "latency_cdf.png")
    if not args.quiet:
        what = args.trace if args.trace else args.workload
        extra = f", window {args.window}" if args.trace else ""
        t = Table(title=f"archsim run: {res.name} ({what}{extra})")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in res.summary.items():
            t.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
        Console().print(t)
        print(f"results: {res.out_dir}")
    return 0


class _Progress:
    """A rich progress bar of batches done and simulated time, shown once a run has taken a second."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.bar = None
        self.task = None

    def __enter__(self) -> _Progress:
        return self

    def update(self, done: int, total: int, sim_ps: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.t0 < 1.0:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("batches"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("simulated {task.fields[sim]}"), TimeRemainingColumn(),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task("run", total=total, sim="")
        self.bar.update(self.task, completed=done, sim=f"{sim_ps / 1e6:,.1f} us")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _cmd_plot(args: argparse.Namespace) -> int:
    from archsim.report import figures as F

    first = Path(args.results[0])
    if args.kind == "cdf":
        hists = {Path(r).name: F.run_histogram(r, args.y) for r in args.results}
        fig = F.cdf(hists, logx=args.logx)
        default = (first if first.is_dir() else first.parent) / f"cdf_{args.y.replace('.', '_')}"
    else:
        if not args.x:
            raise InputError(f"--x: needed for --kind {args.kind}")
        import pandas as pd

        df = pd.concat([F.load_results(r) for r in args.results], ignore_index=True)
        if args.kind == "line":
            fig = F.line(df, args.x, args.y, args.hue, logx=args.logx, logy=args.logy)
        elif args.kind == "bar":
            fig = F.bar(df, args.x, args.y, args.hue, logy=args.logy)
        else:
            ys = args.y.split(",") if "," in args.y else args.y
            fig = F.stacked(df, args.x, ys)
        stem = args.y.replace("*", "").replace(",", "_")
        default = (first if first.is_dir() else first.parent) / f"{args.kind}_{stem}_vs_{args.x}"
    for p in F.save(fig, Path(args.out) if args.out else default):
        print(f"written {p}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from archsim.sweep.cli import cmd_sweep

    return cmd_sweep(args)


def _cmd_trace(args: argparse.Namespace) -> int:
    from archsim.workload.cli_trace import cmd_trace

    return cmd_trace(args)


def _cmd_presets(args: argparse.Namespace) -> int:
    from archsim.config import list_presets, list_shipped

    hwconfigs = list_shipped("hwconfig")
    shadowed = {p["name"] for p in hwconfigs}
    presets = [(p["name"], p["path"].rsplit("/", 1)[0] if "/" in p["path"] else "",
                (p.get("description") or "")
                + (f" (shadowed by the hwconfig {p['name']}: name it {p['path'].rsplit('.', 1)[0]})"
                   if p["name"] in shadowed else ""))
               for p in list_presets()]
    groups = [
        ("Shipped hwconfigs (hwconfigs/*.yaml): archsim run NAME ...",
         [(p["name"], "", p.get("description") or "") for p in hwconfigs]),
        ("Shipped workloads (workloads/*.yaml): archsim run CONFIG --workload NAME",
         [(p["name"], "", p.get("description") or "") for p in list_shipped("workload")]),
        ("Built-in presets (archsim/config/presets/<dir>/*.yaml): extends: NAME, or archsim run NAME",
         presets),
    ]
    for i, (title, rows) in enumerate(groups):
        print(("\n" if i else "") + title)
        if not rows:
            print("  (none found)")
        for name, where, text in rows:
            print(f"  {name:26s} {where + ' ' * max(2, 9 - len(where)) if where else ''}{text}".rstrip())
    print("\nA CONFIG name is looked up as a file first, then a shipped hwconfig, then a preset.")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from archsim.system.config import load_system
    from archsim.system.graph import describe, to_dot
    from archsim.system.shorthand import expand

    cfg, loaded = load_system(args.config, args.overrides)
    graph = expand(cfg)
    print(f"{cfg.name or loaded.name}: {len(graph.nodes)} components, built in this order (wires: key -> name)")
    print(describe(graph))
    if args.dot:
        atomic_write_text(args.dot, to_dot(graph))
        print(f"written {args.dot}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from archsim.system.config import SystemConfig

    text = json.dumps(SystemConfig.model_json_schema(), indent=2)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    else:
        print(text)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.what == "gpu":
        return _cmd_validate_gpu(args)
    for given, name in ((args.config, "--config"), (args.out, "--out"), (args.protocol, "--protocol"),
                        (args.steady_state or None, "--steady-state")):
        if given is not None:
            raise InputError(f"{name}: only for archsim validate gpu")

    from archsim.validation import case_name, dram_cases, markdown_table, run_case

    rows = [r for r in dram_cases() if not args.only or any(s in case_name(r) for s in args.only)]
    table = Table(title="archsim vs references (simulators, closed forms)")
    for col in ("case", "metric", "reference", "archsim", "error", "tolerance", "ok"):
        table.add_column(col, justify="left" if col in ("case", "metric") else "right")
    checks = []
    con = Console()
    with con.status("validating") as status:
        for i, row in enumerate(rows, 1):
            status.update(f"[{i}/{len(rows)}] {case_name(row)}")
            checks += run_case(row)[1]
    if not args.only or any(s in "host cxl" for s in args.only):
        with con.status("closed-form checks of the host and CXL models"):
            from archsim.validation import model_checks

            checks += list(model_checks())
    if args.papers:
        with con.status("the papers' set-ups (RecNMP, ReCross, PIFS-Rec)"):
            from archsim.validation_papers import paper_checks

            checks += list(paper_checks())
    for c in checks:
        table.add_row(c.case, c.metric, f"{c.reference:.6g}", f"{c.archsim:.6g}", c.error_text(), c.tol_text(),
                      "yes" if c.ok else "[red]no[/red]")
    con.print(table)
    if args.markdown:
        atomic_write_text(args.markdown, markdown_table(checks))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} within tolerance, {len(failed)} outside")
    return 3 if failed and args.strict else 0


def _read_gpu_cases(path: str) -> tuple[list[dict[str, str]], list[str]]:
    """``archsim.gpu.validate.read_cases``, and what it lets through that would fail later: a CSV the csv
    module refuses or a count it cannot read is bad input (exit 2), and each case's index distribution is
    built once here, so a ``dist`` the sampler refuses (``zipf0``) fails before the run, not in its middle."""
    import csv

    from archsim.gpu.validate import case_of, read_cases

    try:
        rows, cols = read_cases(path)
    except (csv.Error, ValueError) as e:
        raise ConfigError(f"not a CSV of cases: {e}", file=str(path)) from None
    for i, row in enumerate(rows, start=2):
        try:
            case_of(row, str(path), i).sampler()
        except ValueError as e:
            raise ConfigError(str(e), file=str(path), line=i, path="dist") from None
    return rows, cols


def _measured(rows: list[dict[str, str]], cols: list[str], file: str) -> list[dict[str, float | None]]:
    """Each row's measured ``kernel_time_ns`` and ``l2_hit_pct`` (None where the column is absent or the cell
    empty); ConfigError naming file, line and column on a value that is not a measurement."""
    import math

    out = []
    for i, row in enumerate(rows):
        vals: dict[str, float | None] = {}
        for col, lo, hi in (("kernel_time_ns", 0.0, math.inf), ("l2_hit_pct", 0.0, 100.0)):
            text = (row.get(col) or "").strip() if col in cols else ""
            if not text:
                vals[col] = None
                continue
            try:
                x = float(text)
            except ValueError:
                x = math.nan
            ok = math.isfinite(x) and (lo < x if col == "kernel_time_ns" else lo <= x <= hi)
            if not ok:
                want = "a time in ns > 0" if col == "kernel_time_ns" else "a percentage from 0 to 100"
                raise ConfigError(f"must be {want} (or empty), got {text!r}", file=file, line=i + 2, path=col)
            vals[col] = x
        out.append(vals)
    return out


def _cmd_validate_gpu(args: argparse.Namespace) -> int:
    """``archsim validate gpu CASES.csv [--config HW] --out PRED.csv``: predict each case, write CASES.csv with
    the ``pred_*`` columns added, and compare with the measured columns where CASES.csv has them."""
    from rich.console import Console
    from rich.table import Table

    from archsim.gpu.validate import DEFAULT_CONFIG, load_gpu, load_gpu_host, predict, write_predictions

    if args.cases is None:
        raise InputError("validate gpu: needs CASES.csv (archsim validate gpu CASES.csv --out PRED.csv)")
    if not args.out:
        raise InputError("--out: needed for archsim validate gpu (the CSV of predictions to write)")
    for given, name in ((args.only, "--only"), (args.markdown, "--markdown"), (args.papers, "--papers")):
        if given:
            raise InputError(f"{name}: not for archsim validate gpu")
    if args.steady_state and args.protocol not in (None, "steady"):
        raise InputError(f"--steady-state: contradicts --protocol {args.protocol}")
    protocol = "steady" if args.steady_state else (args.protocol or "kernel-replay")
    rows, cols = _read_gpu_cases(args.cases)  # a bad CSV fails before anything runs
    measured = _measured(rows, cols, str(args.cases))
    config = args.config if args.config is not None else str(DEFAULT_CONFIG)
    spec, hbm_spec = load_gpu(config)
    host = load_gpu_host(config)
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError("is a directory, not a file to write", file=str(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create its directory: {e.strerror or e.__class__.__name__}",
                          file=str(out)) from None

    con = Console()
    with con.status("measuring the loaded latency of the HBM (once per process)") as status:
        def progress(i: int, n: int, row: dict[str, str]) -> None:
            status.update(f"[{i + 1}/{n}] rows={row['rows']} dim={row['dim']} dtype={row['dtype']} "
                          f"batch={row['batch']} pooling={row['pooling']} dist={row['dist']}")

        preds = predict(rows, spec, hbm_spec, progress=progress, protocol=protocol, host=host)
    try:
        write_predictions(out, preds, cols)
    except OSError as e:
        raise ConfigError(f"cannot write the predictions: {e.strerror or e.__class__.__name__}",
                          file=str(out)) from None

    has_time, has_l2 = "kernel_time_ns" in cols, "l2_hit_pct" in cols
    table = Table(title=f"archsim validate gpu: {args.cases} on {Path(config).name}")
    table.add_column("case" if "case" in cols else "row")
    for name, show in (("measured ns", has_time), ("predicted ns", True), ("error", has_time),
                       ("measured L2 %", has_l2), ("predicted L2 %", True), ("points", has_l2),
                       ("ok", has_time or has_l2)):
        if show:
            table.add_column(name, justify="right")
    judged = within = 0
    for i, (p, m) in enumerate(zip(preds, measured), 1):
        t_pred, l2_pred = float(p["pred_kernel_time_ns"]), float(p["pred_l2_hit_pct"])
        t_meas, l2_meas = m["kernel_time_ns"], m["l2_hit_pct"]
        cells = [p["case"] if "case" in cols else str(i)]
        ok: bool | None = None
        if has_time:
            err = None if t_meas is None else (t_pred - t_meas) / t_meas
            cells += ["-" if t_meas is None else f"{t_meas:,.0f}", f"{t_pred:,.0f}",
                      "-" if err is None else f"{err:+.1%}"]
        else:
            cells.append(f"{t_pred:,.0f}")
        if has_l2:
            diff = None if l2_meas is None else l2_pred - l2_meas
            cells += ["-" if l2_meas is None else f"{l2_meas:.2f}", f"{l2_pred:.2f}",
                      "-" if diff is None else f"{diff:+.2f}"]
        else:
            cells.append(f"{l2_pred:.2f}")
        if (has_time or has_l2) and (not has_time or t_meas is not None) and (not has_l2 or l2_meas is not None):
            ok = ((not has_time or abs(t_pred - t_meas) <= GPU_TIME_TOL * t_meas)
                  and (not has_l2 or abs(l2_pred - l2_meas) <= GPU_L2_TOL_POINTS))
            judged += 1
            within += ok
        if has_time or has_l2:
            cells.append("-" if ok is None else "yes" if ok else "[red]no[/red]")
        table.add_row(*cells)
    con.print(table)
    print(f"written {out}")
    n = len(preds)
    if has_time or has_l2:
        what = " and ".join(([f"kernel time within {GPU_TIME_TOL:.0%}"] if has_time else [])
                            + ([f"L2 hit rate within {GPU_L2_TOL_POINTS:g} points"] if has_l2 else []))
        unjudged = f" ({n - judged} without measured values)" if judged < n else ""
        print(f"{n} case{'s' if n != 1 else ''}: {within} with {what}{unjudged}")
        return 3 if args.strict and within < judged else 0
    print(f"{n} case{'s' if n != 1 else ''} predicted")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from archsim.report.bench import run_bench

    run_bench(out=args.out, config=args.config, engine=args.engine, repeat=args.repeat, only=args.only)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
