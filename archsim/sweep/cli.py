"""``archsim sweep SPEC [-j N | --dask ADDRESS] [--out DIR]``: run a sweep spec (see docs/sweeps.md).

:func:`add_sweep_parser` adds the sub-command to ``archsim``'s parser and :func:`cmd_sweep` runs it; bad input
raises InputError / ConfigError, which ``archsim.cli.main`` prints as one line (exit status 2). Also runnable
on its own: ``python -m archsim.sweep.cli SPEC ...``.
"""

from __future__ import annotations

import argparse
import sys

from archsim.config import InputError
from archsim.config.errors import run_guarded

__all__ = ["add_sweep_parser", "cmd_sweep", "main"]


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sweep`` to an ``add_subparsers()`` object; returns the new parser."""
    s = subparsers.add_parser("sweep", help="run a sweep spec: many points, in parallel, resumable",
                              description="Run every point of a sweep spec and write a tidy table to DIR "
                                          "(results.csv, results.parquet). Finished points are kept in "
                                          "DIR/points/ and not run again; failed ones are.")
    s.add_argument("spec", help="sweep spec YAML (see docs/sweeps.md)")
    s.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="local worker processes (default 1: in this process; 0: one per CPU); "
                        "with --dask local, the number of Dask workers (default 2)")
    s.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster: tcp://HOST:PORT of a scheduler, or 'local' (a LocalCluster)")
    s.add_argument("--out", help="sweep directory (default results/<spec-name>/)")
    s.add_argument("--max-wall", type=float, default=None, metavar="SECONDS",
                   help="wall-clock seconds one point may run (replaces the spec's timeout); a point past it "
                        "fails with 'timed out after N s' and, if no point failed otherwise, the exit status is 4")
    s.add_argument("--dry-run", action="store_true", help="list the points (after constraints) and exit")
    s.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    return s


EXIT_STOPPED = 4
"""Exit status when points ran past their time limit (``--max-wall`` or the spec's ``timeout``) and no point
failed otherwise."""


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``archsim sweep``; 0 when every point succeeded, 1 when some failed (they are in the table) or the
    Dask scheduler went away midway (one line; the points recorded are kept), 4 when the only failures are
    points that ran past their time limit. Nothing runs when the spec (any of its values) is invalid:
    InputError / ConfigError, exit status 2."""
    from archsim.api import check_max_wall
    from archsim.sweep.executors import ExecutorLost
    from archsim.sweep.runner import run_sweep
    from archsim.sweep.spec import expand_points, load_sweep

    max_wall = getattr(args, "max_wall", None)
    check_max_wall(max_wall, "--max-wall")
    if args.jobs is not None and args.jobs < 0:
        raise InputError(f"-j: must be >= 0, got {args.jobs}")
    if args.dask is not None and args.dask != "local" and args.jobs is not None:
        raise InputError("-j: the workers of a Dask cluster are the cluster's; -j applies to --dask local")
    sweep = load_sweep(args.spec)
    if args.dry_run:
        points = expand_points(sweep)
        print(f"sweep {sweep.name}: {len(points)} points ({sweep.grid_size} before constraints)")
        for p in points:
            print("  " + ", ".join(f"{k}={v!r}" for k, v in p.axes.items()))
        return 0
    if max_wall is not None:
        sweep.timeout = max_wall
    if args.dask is not None and args.dask != "local":
        # a lost scheduler is reported in one line below; the client's own logs of its reconnection attempts and
        # of its closed comms (distributed.client, distributed.batched, ...: tracebacks on stderr) would only
        # repeat it (set after the import: distributed sets its loggers' levels)
        import logging

        try:
            import distributed  # noqa: F401
        except ImportError:  # pragma: no cover - a dependency; DaskBackend reports it
            pass
        names = [n for n in logging.Logger.manager.loggerDict if n == "distributed" or n.startswith("distributed.")]
        for name in {"distributed", "distributed.client", "distributed.batched", *names}:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        df = run_sweep(sweep, jobs=args.jobs, dask=args.dask, out=args.out, progress=not args.quiet)
    except ExecutorLost as exc:
        print(f"archsim: sweep {sweep.name} stopped: {exc}", file=sys.stderr)
        return 1
    failed = int((df["status"] != "ok").sum())
    if failed == 0:
        return 0
    stats = df.attrs["sweep"]
    return EXIT_STOPPED if stats["failed"] == stats["timed_out"] else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m archsim.sweep.cli SPEC ...``: the sweep command without the rest of ``archsim``."""
    p = argparse.ArgumentParser(prog="archsim")
    add_sweep_parser(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)])
    return run_guarded(cmd_sweep, args, interrupted="interrupted (finished points are kept; run again to resume)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
