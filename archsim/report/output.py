"""Run directories: ``config.yaml`` (resolved), ``stats.json`` (the hierarchy), ``summary.csv`` (one row).

Written atomically: everything goes to a temporary sibling directory that is renamed into place only when
complete, so a failed run leaves no half-written results.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def summary_csv_text(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(summary))
    w.writerow([_fmt(v) for v in summary.values()])
    return buf.getvalue()


def _fmt(v: Any) -> str:
    """A summary value as written: floats to 6 decimals; a value that could not be computed (NaN, infinite) is
    left empty (:func:`undefined_columns` says why)."""
    if isinstance(v, float):
        return repr(round(v, 6)) if math.isfinite(v) else ""
    return str(v)


#: why a summary column is empty
UNDEFINED_REASON = "no samples: nothing this column measures happened in the run (e.g. no reads, no host loads)"


def undefined_columns(summary: dict[str, Any]) -> dict[str, str]:
    """The columns left empty in summary.csv (their value could not be computed), each with the reason."""
    return {k: UNDEFINED_REASON for k, v in summary.items() if isinstance(v, float) and not math.isfinite(v)}


def write_run_dir(out: Path, resolved_yaml: str, stats: dict[str, Any], summary: dict[str, Any],
                  extra: dict[str, bytes] | None = None) -> Path:
    """Write the three result files (and ``extra`` name -> bytes) into ``out`` atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    undefined = undefined_columns(summary)
    if undefined:
        stats = {**stats, "undefined_columns": undefined}
    try:
        (tmp / "config.yaml").write_text(resolved_yaml)
        (tmp / "stats.json").write_text(json.dumps(_clean(stats), indent=1, sort_keys=True))
        (tmp / "summary.csv").write_text(summary_csv_text(summary))
        for name, data in (extra or {}).items():
            (tmp / name).write_bytes(data)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
