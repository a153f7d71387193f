"""DRAM commands, hierarchy levels and the compiled timing-constraint table.

A standard's constraints are data (``constraints:`` in a preset): "at level L, after command A, command B may
issue N cycles later", N an arithmetic expression over the timing names (``max(nBL, nCCD_L)``). They are
compiled once into per-command update lists that the channel timing state applies on every issue.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Command indices are used as array offsets on the hot path.
ACT, PRE, RD, WR, RDA, WRA, REF = range(7)
COMMANDS: tuple[str, ...] = ("ACT", "PRE", "RD", "WR", "RDA", "WRA", "REF")
NCMD = len(COMMANDS)
CMD_INDEX = {c: i for i, c in enumerate(COMMANDS)}
COLUMN_CMDS = frozenset((RD, WR, RDA, WRA))
READ_CMDS = frozenset((RD, RDA))
WRITE_CMDS = frozenset((WR, WRA))

LEVELS: tuple[str, ...] = ("channel", "rank", "bankgroup", "bank")

_ALLOWED_FUNCS = {"max": max, "min": min}


def eval_delay(expr: str | int, names: Mapping[str, int]) -> int:
    """Evaluate a constraint's delay: an int, or + - * // max() min() over timing names. Raises ValueError."""
    if isinstance(expr, bool):
        raise ValueError(f"delay must be an integer or an expression, got {expr!r}")
    if isinstance(expr, int):
        return expr
    try:
        tree = ast.parse(str(expr), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot parse delay expression {expr!r}") from None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names or names[node.id] is None:
                raise ValueError(f"unknown timing name {node.id!r} in {expr!r}")
            return int(names[node.id])
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.FloorDiv):
                return a // b
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _ALLOWED_FUNCS:
            return _ALLOWED_FUNCS[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(f"unsupported element in delay expression {expr!r}")

    return ev(tree)


@dataclass
class CompiledConstraints:
    """Per issued command, the (next command, delay) pairs to apply at each level.

    ``same[level][cmd]``: applies to the node of ``level`` holding the issuing bank;
    ``sibling[level][cmd]``: to the other nodes of ``level`` under the same parent;
    ``windows[cmd]``: (level, count, span) rolling windows that ``cmd`` both fills and must satisfy.
    Delays <= 0 are dropped (they never bind).
    """

    same: dict[str, list[list[tuple[int, int]]]] = field(default_factory=dict)
    sibling: dict[str, list[list[tuple[int, int]]]] = field(default_factory=dict)
    windows: list[list[tuple[str, int, int]]] = field(default_factory=list)


def compile_constraints(constraints: Sequence, names: Mapping[str, int]) -> CompiledConstraints:
    """Turn the spec's constraint list into update tables; the largest delay wins for duplicates."""
    same = {lv: [dict() for _ in range(NCMD)] for lv in LEVELS}
    sib = {lv: [dict() for _ in range(NCMD)] for lv in LEVELS}
    windows: list[list[tuple[str, int, int]]] = [[] for _ in range(NCMD)]
    for c in constraints:
        d = eval_delay(c.delay, names)
        for p in c.prev:
            pi = CMD_INDEX[p]
            if c.window:
                windows[pi].append((c.level, c.window, d))
                continue
            table = sib[c.level] if c.sibling else same[c.level]
            for n in c.next:
                ni = CMD_INDEX[n]
                if d > 0 and d > table[pi].get(ni, 0):
                    table[pi][ni] = d
    out = CompiledConstraints()
    out.same = {lv: [sorted(t.items()) for t in same[lv]] for lv in LEVELS}
    out.sibling = {lv: [sorted(t.items()) for t in sib[lv]] for lv in LEVELS}
    out.windows = windows
    return out
