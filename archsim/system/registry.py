"""The registry of component kinds: ``impl:`` name -> the schema of its node and the function that builds it.

A kind is registered once by the package that owns the model (``archsim/dram/kinds.py`` registers ``dram``,
``archsim/cxl/kinds.py`` the links, switches and expanders, ...). The graph builder
(:mod:`archsim.system.graph`) looks kinds up here and knows none of them: a new kind is one module with one
:func:`register` call, found by :func:`load_kinds` (every ``kinds*.py`` module of an ``archsim`` subpackage is
imported), with no other edit. docs/architecture.md walks through adding one.

A node's schema is a pydantic model of its parameters; fields whose names the kind lists in ``refs`` hold
names of other nodes of the graph (a cache's ``next``, a link's ``to``, a router's range targets), which is
how components are wired. ``build(ctx, node)`` returns the component; the components it is wired to are
already built (``ctx.get(name)``), since the builder goes downstream first.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

#: build(ctx, node) -> component
BuildFn = Callable[[Any, Any], Any]
#: refs(params) -> [(key path inside the node, name of the node it names, role that node must have), ...]
RefsFn = Callable[[BaseModel], list[tuple[tuple, str, str]]]
#: check(params) -> [(key path inside the node, message), ...]: the node's own cross-field rules
CheckFn = Callable[[BaseModel], list[tuple[tuple, str]]]

#: Roles a kind plays for the nodes wired to it: ``memory`` (takes MemRequests: a DRAM, a cache, a link, a
#: switch, a router), ``reducer`` (takes GatherReduce bags near the data), ``driver`` (runs workloads; nothing
#: is wired to it), and narrower ones a kind may need (``dram``, ``switch``, ``link``, ``reduce_units``).
ROLES = ("memory", "reducer", "driver", "dram", "switch", "link", "reduce_units")


@dataclass(frozen=True)
class Kind:
    """One component kind: its ``impl`` name, parameter schema, wiring and build function."""

    impl: str
    schema: type[BaseModel]
    build: BuildFn
    refs: RefsFn = field(default=lambda params: [])
    roles: frozenset[str] = frozenset({"memory"})
    check: CheckFn = field(default=lambda params: [])
    doc: str = ""


_KINDS: dict[str, Kind] = {}
_LOADED = False


def register(impl: str, schema: type[BaseModel], build: BuildFn, refs: RefsFn | None = None,
             roles: tuple[str, ...] = ("memory",), check: CheckFn | None = None, doc: str = "") -> Kind:
    """Register kind ``impl`` playing ``roles`` (see :data:`ROLES`); a second registration of the same name
    replaces the first (tests and notebooks may redefine a kind)."""
    kind = Kind(impl, schema, build, refs or (lambda params: []), frozenset(roles), check or (lambda params: []),
                doc or (schema.__doc__ or "").strip())
    _KINDS[impl] = kind
    return kind


def load_kinds() -> None:
    """Import every ``kinds*`` module of archsim's subpackages once (each registers its kinds)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import archsim

    for pkg in pkgutil.iter_modules(archsim.__path__):
        if not pkg.ispkg:
            continue
        sub = importlib.import_module(f"archsim.{pkg.name}")
        for mod in pkgutil.iter_modules(sub.__path__):
            if mod.name == "kinds" or mod.name.startswith("kinds_"):
                importlib.import_module(f"archsim.{pkg.name}.{mod.name}")


def kind(impl: str) -> Kind:
    """The kind called ``impl``; KeyError (with the known names) if none."""
    load_kinds()
    try:
        return _KINDS[impl]
    except KeyError:
        raise KeyError(f"unknown impl {impl!r}; known: {', '.join(sorted(_KINDS))}") from None


def kinds() -> Iterator[Kind]:
    """Every registered kind, by name."""
    load_kinds()
    for name in sorted(_KINDS):
        yield _KINDS[name]


def ref_list(*names: str, **roles: str) -> RefsFn:
    """A ``refs`` function for kinds whose reference fields are plain names (or lists of names, or None).
    Each field wires to a ``memory`` unless ``roles`` names another role for it (``near="reducer"``)."""

    def refs(params: BaseModel) -> list[tuple[tuple, str, str]]:
        out: list[tuple[tuple, str, str]] = []
        for n in (*names, *roles):
            v = getattr(params, n)
            role = roles.get(n, "memory")
            if v is None:
                continue
            if isinstance(v, str):
                out.append(((n,), v, role))
            else:
                out += [((n, i), x, role) for i, x in enumerate(v)]
        return out

    return refs
