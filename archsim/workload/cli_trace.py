"""``archsim trace gen | stats``: write a workload as an archsim trace, and summarise a workload or trace.

Wired into ``archsim/cli.py`` with :func:`add_trace_parser` and :func:`cmd_trace` (or the two commands
directly). Bad input raises :class:`~archsim.config.InputError`; ``archsim.cli.main`` prints it as one line on
stderr and exits with status 2. :func:`main` runs the same commands stand-alone
(``python -m archsim.workload.cli_trace stats workloads/zipf_small.yaml``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from archsim.config import InputError
from archsim.config.errors import run_guarded
from archsim.core.files import atomic_write_text

__all__ = ["add_trace_parser", "cmd_trace", "cmd_trace_gen", "cmd_trace_stats", "main"]


def add_trace_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``trace gen`` and ``trace stats`` to an argparse sub-parser collection; return the ``trace``
    parser. The chosen command is in ``args.trace_cmd`` (``gen`` or ``stats``), its function in
    ``args.trace_func``.
    """
    t = subparsers.add_parser("trace", help="generate and inspect embedding workload traces")
    tsub = t.add_subparsers(dest="trace_cmd", required=True)

    g = tsub.add_parser("gen", help="write a workload's batches as an archsim trace directory")
    g.add_argument("spec", help="workload YAML file or shipped workload name (e.g. zipf_small)")
    g.add_argument("--out", required=True, help="trace directory to write (meta.json + batch_NNNNN.npz)")
    g.add_argument(
        "--batches", type=int, default=None, help="number of batches (default: the spec's num_batches)"
    )
    g.add_argument("--seed", type=int, default=None, help="seed (default: the spec's seed)")
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a workload value (repeatable)",
    )
    g.add_argument("--quiet", action="store_true", help="print nothing on success")
    g.set_defaults(trace_func=cmd_trace_gen)

    s = tsub.add_parser("stats", help="per-table statistics of a workload or trace (one streaming pass)")
    s.add_argument(
        "source", help="workload YAML file or name, archsim trace directory or .npz, or dlrm .pt[.gz]"
    )
    s.add_argument("--batches", type=int, default=None, help="read at most this many batches")
    s.add_argument(
        "--seed", type=int, default=None, help="seed of a generated workload (default: the spec's)"
    )
    s.add_argument(
        "--format",
        choices=("auto", "archsim", "dlrm"),
        default="auto",
        help="trace format of a trace path (default: by file name)",
    )
    s.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a workload value (repeatable)",
    )
    s.add_argument(
        "--json", dest="json_out", default=None, help="also write the statistics as JSON to this file"
    )
    s.set_defaults(trace_func=cmd_trace_stats)
    return t


def cmd_trace(args: argparse.Namespace) -> int:
    """Run the ``trace`` sub-command chosen in ``args``."""
    return {"gen": cmd_trace_gen, "stats": cmd_trace_stats}[args.trace_cmd](args)


MAX_BATCHES = 10**9
"""Most batches ``--batches`` may ask for (the work bound of a run is archsim.api.MAX_LOOKUPS)."""


def _check_count(name: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_BATCHES:
        raise InputError(f"{name}: must be 1 to {MAX_BATCHES:,}, got {value}")


def cmd_trace_gen(args: argparse.Namespace) -> int:
    """``archsim trace gen SPEC --out DIR [--batches N] [--seed S] [--set K=V]``."""
    from archsim.api import check_workload_size
    from archsim.config import ConfigError
    from archsim.workload.batches import iter_batches
    from archsim.workload.npz_trace import write_trace
    from archsim.workload.spec import load_workload

    _check_count("--batches", args.batches)
    overrides = list(args.overrides)
    if args.batches is not None:
        overrides.append(f"num_batches={args.batches}")
    spec = load_workload(args.spec, overrides=overrides)
    check_workload_size(spec)
    if spec.trace is not None and args.seed is not None:
        raise ConfigError("--seed does not apply: the workload reads a trace", file=str(args.spec))
    seed = spec.seed if args.seed is None else args.seed
    out = Path(args.out)
    if spec.trace_file is not None and out.resolve() == spec.trace_file.resolve():
        raise InputError(f"--out {out}: is the trace the workload reads")
    t0 = time.perf_counter()
    tables = spec.table_list()
    extra = {
        "source": {
            "workload": str(args.spec),
            "seed": None if spec.trace is not None else seed,
            "overrides": list(args.overrides),
        }
    }
    meta = write_trace(out, iter_batches(spec, seed=seed), tables, name=spec.name, extra=extra)
    if not args.quiet:
        size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
        print(
            f"wrote {meta['num_batches']} batches of {meta['batch_size']} bags x {len(tables)} tables "
            f"to {out} ({size / 1e6:.2f} MB, {time.perf_counter() - t0:.2f} s)"
        )
    return 0


def cmd_trace_stats(args: argparse.Namespace) -> int:
    """``archsim trace stats FILE_OR_SPEC [--batches N] [--seed S] [--json FILE]``: print a rich table."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from archsim.workload.trace_stats import trace_stats

    _check_count("--batches", args.batches)
    st = trace_stats(
        args.source,
        overrides=args.overrides,
        seed=args.seed,
        num_batches=args.batches,
        format=getattr(args, "format", "auto"),
    )
    title = (
        f"{st['name']}: {st['batches']} batch{'es' if st['batches'] != 1 else ''} of {st['batch_size']} bags"
        + (f", seed {st['seed']}" if st["seed"] is not None else f" ({st['trace_format']} trace)")
    )
    t = Table(title=title)
    cols = (
        "table",
        "rows",
        "lookups",
        "unique rows",
        "pooling mean [min, max]",
        "zipf s",
        "unique/batch",
        "top 1% rows' share",
    )
    for c in cols:
        t.add_column(escape(c), justify="left" if c == "table" else "right")
    for r in st["tables"]:
        t.add_row(
            r["name"],
            f"{r['rows']:,}",
            f"{r['lookups']:,}",
            f"{r['unique_rows']:,}",
            escape(f"{r['pooling_mean']:.2f} [{r['pooling_min']}, {r['pooling_max']}]"),
            "-" if r["zipf_s"] is None else f"{r['zipf_s']:.3f}" + ("" if r["zipf_reliable"] else "?"),
            f"{r['unique_per_batch']:,.1f}",
            f"{100 * r['hot1pct_share']:.1f}%",
        )
    # A pipe or file gets the whole table; a terminal keeps its own width.
    Console(width=None if sys.stdout.isatty() else 140).print(t)
    tot = st["total"]
    print(
        f"total: {tot['lookups']:,} lookups, {tot['bags']:,} bags, "
        f"{tot['lookups_per_batch']:,.1f} lookups/batch"
    )
    if not all(r["zipf_reliable"] for r in st["tables"] if r["zipf_s"] is not None):
        print(
            "?: over 10% of the lookups hit a row seen only once: too few lookups per row, so the Zipf fit "
            "overestimates s; read more batches"
        )
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json_out, json.dumps(st, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point, with archsim's error handling (bad input: one line on stderr, exit 2)."""
    p = argparse.ArgumentParser(prog="archsim")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_trace_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "trace":
        argv = ["trace", *argv]
    args = p.parse_args(argv)
    return run_guarded(cmd_trace, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
