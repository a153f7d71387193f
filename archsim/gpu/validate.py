"""``archsim validate gpu CASES.csv [--config HW] --out PRED.csv``: the GPU model against EmbeddingBag
measurements.

Each row of CASES.csv has the columns of ../shared/reference/gpu/h100_embedding_bag.csv that define a case
(``rows, dim, dtype, batch, pooling, dist``; others are kept as they are); the case is simulated on the config's
``gpu`` node (default ``hwconfigs/gpu_h100.yaml``) with its indices regenerated as that README says (uniform,
or Zipf ranks scattered by a fixed permutation; 8 batches cycled, the caches warm from the earlier ones), and
the row is written back with ``pred_kernel_time_ns``, ``pred_l2_hit_pct`` (and the L1 hit rate and DRAM bytes)
beside the measured columns.

The measurement protocol (:data:`PROTOCOLS`, docs/gpu.md "The measurement protocol") says what the measured
counters saw: ``kernel-replay`` (the default) is Nsight Compute's default, as the reference measured: the
launch after the save of device memory (its lines not in the L2) gives the time, the DRAM bytes and the L2's
hits, and a replay of it the L2's lookups; ``cold`` is one launch with the L2 emptied (Nsight Compute with
``--cache-control all``); ``steady`` is the launch as the earlier ones leave the L2 (one pass, or application
replay).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from archsim.config.errors import ConfigError
from archsim.gpu.embbag import DTYPE_BYTES, EmbeddingBagCase, EmbeddingBagModel, gpu_hbm_curve
from archsim.gpu.spec import GPUSpec

REQUIRED = ("rows", "dim", "dtype", "batch", "pooling", "dist")
PRED = ("pred_kernel_time_ns", "pred_l2_hit_pct", "pred_l1_hit_pct", "pred_dram_read_bytes",
        "pred_l2_hit_pct_launch")
PROTOCOLS = {
    "kernel-replay": dict(flush_l2=True, replay_lookups=True),
    "cold": dict(flush_l2=True, replay_lookups=False),
    "steady": dict(flush_l2=False, replay_lookups=False),
}
"""How the measured counters were taken: the L2 state before the timed launch, and whether the L2 hit rate is
the launch's hits over a replay's lookups (module docstring)."""
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "hwconfigs" / "gpu_h100.yaml"
MAX_CASE_LOOKUPS = 1 << 26
"""Largest batch x pooling of one case (67M lookups: about an hour of simulation)."""


def _gpu_node(config: str | Path):
    """The expanded graph of hwconfig ``config`` and its first ``gpu`` node; ConfigError when it has none."""
    from archsim.system.config import load_system
    from archsim.system.shorthand import expand

    graph = expand(load_system(str(config))[0])
    for node in graph.nodes.values():
        if node.impl == "gpu":
            return graph, node
    raise ConfigError("has no component of kind gpu (impl: gpu)", file=str(config), line=None, path="components")


def load_gpu(config: str | Path) -> tuple[GPUSpec, Any]:
    """The first ``gpu`` node of hwconfig ``config`` and the DRAM spec of its HBM stack; ConfigError when the
    config has none."""
    graph, node = _gpu_node(config)
    return node.params, graph.nodes[node.params.memory].params


def load_gpu_host(config: str | Path) -> tuple[Any, Any] | None:
    """For the gpu node (the first) whose placement is ``host``: its link's parameters and the host dram's spec
    (None for placement hbm); ConfigError for hot_in_hbm (a profile of a workload) or a link that leads to no
    dram."""
    graph, node = _gpu_node(config)
    pol = node.params.placement.policy
    if pol == "hbm":
        return None
    if pol != "host":
        raise ConfigError(f"validate gpu runs placement hbm or host, not {pol} (it needs a workload's profile)",
                          file=str(config), line=None, path=f"components.{node.name}.placement.policy")
    link = graph.nodes.get(node.params.link) if node.params.link else None
    dram = graph.nodes.get(link.params.to) if link is not None and link.impl == "pcie_link" else None
    if dram is None or dram.impl != "dram":
        raise ConfigError("placement host needs a link (a pcie_link to a dram node)", file=str(config),
                          line=None, path=f"components.{node.name}.link")
    return link.params, dram.params


def read_cases(path: str | Path) -> tuple[list[dict[str, str]], list[str]]:
    """The rows of CASES.csv and its columns; ConfigError (file, line, column) on a missing column or a value
    that is not a case."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the cases: {e.__class__.__name__}", file=str(p), line=None) from None
    import io

    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        cols = list(reader.fieldnames or [])
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise ConfigError(f"missing column(s) {', '.join(missing)} (the cases need {', '.join(REQUIRED)})",
                              file=str(p), line=1)
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise ConfigError(f"column(s) named twice: {', '.join(dup)}", file=str(p), line=1)
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise ConfigError("a row with more or fewer fields than the header", file=str(p), line=line)
            case_of(row, str(p), line)
            rows.append(row)
    except csv.Error as e:
        raise ConfigError(f"not a CSV file: {e}", file=str(p), line=reader.line_num) from None
    if not rows:
        raise ConfigError("no cases (a header and no rows)", file=str(p), line=1)
    return rows, cols


def case_of(row: dict[str, str], file: str = "<cases>", line: int | None = None) -> EmbeddingBagCase:
    """The case of one CSV row (ConfigError naming the column on a bad value)."""
    vals: dict[str, Any] = {}
    for k in ("rows", "dim", "batch", "pooling"):
        v = (row.get(k) or "").strip()
        if not (v.isascii() and v.isdigit()) or int(v) < 1:
            raise ConfigError(f"must be a positive integer, got {v!r}", file=file, line=line, path=k)
        vals[k] = int(v)
    if vals["dim"] > 65536:
        raise ConfigError(f"must be at most 65536, got {vals['dim']}", file=file, line=line, path="dim")
    if vals["rows"] >= 1 << 40:
        raise ConfigError(f"must be below 2^40, got {vals['rows']}", file=file, line=line, path="rows")
    if vals["batch"] * vals["pooling"] > MAX_CASE_LOOKUPS:
        raise ConfigError(f"batch x pooling must be at most {MAX_CASE_LOOKUPS}, got {vals['batch'] * vals['pooling']}",
                          file=file, line=line, path="batch")
    dtype = (row.get("dtype") or "").strip()
    if dtype not in DTYPE_BYTES:
        raise ConfigError(f"must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}", file=file, line=line,
                          path="dtype")
    dist = (row.get("dist") or "").strip()
    try:
        case = EmbeddingBagCase(vals["rows"], vals["dim"], dtype, vals["batch"], vals["pooling"], dist)
        case.sampler()  # a Zipf exponent the sampler refuses (s = 0) fails here, before any case runs
    except ValueError as e:
        raise ConfigError(str(e).removeprefix("dist must be "), file=file, line=line, path="dist") from None
    return case


WARM_LAUNCHES = 14
"""Launches before the timed one, cycling over the case's 8 batches, as the reference measured
(../shared/reference/gpu/README.md: "in the steady state (after 14 launches)")."""


def predict(rows: list[dict[str, str]], spec: GPUSpec, hbm_spec, progress=None,
            protocol: str = "kernel-replay", host: tuple[Any, Any] | None = None) -> list[dict[str, Any]]:
    """Each row with the model's predictions added: a fresh GPU per case, :data:`WARM_LAUNCHES` launches of the
    case's batches, then the timed one, measured as ``protocol`` (:data:`PROTOCOLS`) measures it. ``host``
    (:func:`load_gpu_host`): the table is in pinned host memory behind that link, read in place (placement
    host)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    from archsim.gpu.kinds import HOST_BASE, host_remote

    curve = gpu_hbm_curve(spec, hbm_spec)
    out = []
    for i, row in enumerate(rows):
        if progress is not None:
            progress(i, len(rows), row)
        case = case_of(row)
        remotes = ()
        if host is not None:
            lb = spec.l1.line_bytes
            remotes = (host_remote(spec, host[0], host[1], curve, HOST_BASE // lb,
                                   -(-(HOST_BASE + case.rows * case.row_bytes) // lb),
                                   spec.placement.l2_keeps_host_lines),)
        model = EmbeddingBagModel(spec, hbm_curve=curve, remotes=remotes)
        res = model.run_case(case, warm_launches=WARM_LAUNCHES, table_base=HOST_BASE if host is not None else None,
                             **PROTOCOLS[protocol])
        new = dict(row)
        new["pred_kernel_time_ns"] = f"{res['pred_kernel_time_ns']:.0f}"
        new["pred_l2_hit_pct"] = f"{res['pred_l2_hit_pct']:.2f}"
        new["pred_l1_hit_pct"] = f"{res['pred_l1_hit_pct']:.2f}"
        new["pred_dram_read_bytes"] = str(int(res["pred_dram_read_bytes"]))
        new["pred_l2_hit_pct_launch"] = f"{res['pred_l2_hit_pct_launch']:.2f}"
        out.append(new)
    return out


def write_predictions(path: str | Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    """CASES.csv's columns, then the prediction columns (atomically)."""
    import io

    from archsim.core.files import atomic_write_text

    fields = cols + [c for c in PRED if c not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in fields})
    atomic_write_text(path, buf.getvalue())
