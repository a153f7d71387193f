"""The system graph: named components of registered kinds, wired by name, built downstream first.

A hwconfig's sections (``dram:``, ``host:``, ``nmp:``, ``cxl:``, ``hosts:``) are shorthand: :func:`expand`
turns them into a :class:`Graph` of :class:`Node` s, each an ``impl`` (a kind of
:mod:`archsim.system.registry`), its parameters and the names of the nodes it is wired to. :func:`build`
instantiates the nodes in dependency order and returns a :class:`System` that keeps every component in one
mapping; it finalizes them through the one interface (``finalize(end_ps)``), upstream first. Neither function
tests a kind by name: what a kind is wired to comes from its ``refs``, how it is built from its ``build``.

Names are the components' names in stats and energy (``llc``, ``cxl.sw0.port1.link``, ``host1.dram``), so a
graph's results read the same as the shorthand's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from archsim.system.registry import kind

Path = tuple[Any, ...]


@dataclass
class Node:
    """One component of the graph: ``name``, ``impl`` (its kind), ``params`` (the kind's schema), ``where``
    (the key path in the hwconfig that describes it, for errors)."""

    name: str
    impl: str
    params: BaseModel
    where: Path = ()

    def refs(self) -> list[tuple[Path, str]]:
        """(key path inside the node, name) of every node this one is wired to."""
        return [(rel, t) for rel, t, _ in kind(self.impl).refs(self.params)]


@dataclass
class Graph:
    """Nodes by name, in declaration order; ``hosts``: the nodes that run workloads (drivers), in order;
    ``memory_root``: the node a memory trace drives (the first host's memory map)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    memory_root: str | None = None

    def add(self, name: str, impl: str, params: BaseModel, where: Path = ()) -> Node:
        if name in self.nodes:
            raise ValueError(f"component {name!r} is defined twice")
        node = Node(name, impl, params, where)
        self.nodes[name] = node
        return node

    def errors(self) -> list[tuple[Path, str]]:
        """Wiring problems as (key path, message): a name wired to nothing, a component wired to one that
        cannot take what it sends (a cache's next level that is no memory), a node's own rules (address
        ranges claimed twice), a cycle."""
        errs: list[tuple[Path, str]] = []
        for node in self.nodes.values():
            k = kind(node.impl)
            for rel, target, role in k.refs(node.params):
                if target not in self.nodes:
                    near = [n for n in self.nodes if n.split(".")[-1] == target.split(".")[-1]]
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    errs.append(((*node.where, *rel), f"{target!r} names no component{hint}"))
                elif target == node.name:
                    errs.append(((*node.where, *rel), f"{node.name!r} is wired to itself"))
                elif role not in kind(self.nodes[target].impl).roles:
                    other = self.nodes[target].impl
                    errs.append(((*node.where, *rel), f"{target!r} is a {other}, which cannot serve as the "
                                                      f"{role} of a {node.impl}"))
            errs += [((*node.where, *rel), msg) for rel, msg in k.check(node.params)]
        if errs:
            return errs
        cycle = self._cycle()
        if cycle:
            first = self.nodes[cycle[0]]
            errs.append((first.where, "components wired in a cycle: " + " -> ".join(cycle)))
        return errs

    def _cycle(self) -> list[str] | None:
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(n: str) -> list[str] | None:
            state[n] = 1
            stack.append(n)
            for _, t in self.nodes[n].refs():
                if state.get(t) == 1:
                    return stack[stack.index(t):] + [t]
                if t not in state:
                    found = visit(t)
                    if found:
                        return found
            stack.pop()
            state[n] = 2
            return None

        for n in self.nodes:
            if n not in state:
                found = visit(n)
                if found:
                    return found
        return None

    def order(self) -> list[str]:
        """Build order: every node after the nodes it is wired to; otherwise in declaration order."""
        done: set[str] = set()
        out: list[str] = []

        def visit(n: str) -> None:
            if n in done:
                return
            done.add(n)
            for _, t in self.nodes[n].refs():
                visit(t)
            out.append(n)

        for n in self.nodes:
            visit(n)
        return out

    def below(self, root: str) -> Graph:
        """The part of the graph ``root`` reaches (root included), in declaration order, with ``root`` as its
        memory root and no hosts: what a memory trace drives. Near-data units (wires of role ``reducer``, such
        as an expander's NMP DIMMs) are left out: a trace's plain reads and writes do not reach them, and they
        need a workload's table map; the node that named one keeps its media only."""
        keep: set[str] = set()
        cut: dict[str, list[str]] = {}
        todo = [root]
        while todo:
            n = todo.pop()
            if n in keep:
                continue
            keep.add(n)
            for rel, t, role in kind(self.nodes[n].impl).refs(self.nodes[n].params):
                if role == "reducer" and len(rel) == 1:
                    cut.setdefault(n, []).append(rel[0])
                else:
                    todo.append(t)
        nodes = {}
        for n, node in self.nodes.items():
            if n in keep:
                if n in cut:
                    params = node.params.model_copy(update={key: None for key in cut[n]})
                    node = Node(node.name, node.impl, params, node.where)
                nodes[n] = node
        return Graph(nodes, [], root)

    def edges(self) -> Iterator[tuple[str, str, str]]:
        """(from, to, label) for every wire; label is the key that names the target."""
        for node in self.nodes.values():
            for rel, t in node.refs():
                yield node.name, t, ".".join(str(p) for p in rel)


@dataclass
class BuildContext:
    """What build functions see: the run (``sim``), the table map (where the workload's rows live, which are
    hot; :mod:`archsim.system.table_map`), and the components built so far (``get``)."""

    sim: Any
    table_map: Any = None
    built: dict[str, Any] = field(default_factory=dict)
    graph: Graph | None = None

    def get(self, name: str) -> Any:
        return self.built[name]


class System:
    """A built graph: ``components`` by name in build order; ``hosts`` the drivers (embedding operators)."""

    def __init__(self, sim: Any, graph: Graph, components: dict[str, Any], table_map: Any = None) -> None:
        self.sim = sim
        self.graph = graph
        self.components = components
        self.table_map = table_map
        self.hosts = [components[h] for h in graph.hosts]

    def __getitem__(self, name: str) -> Any:
        return self.components[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.components.get(name, default)

    def of_impl(self, impl: str) -> list[Any]:
        """The components of one kind, in build order."""
        return [self.components[n] for n, node in self.graph.nodes.items() if node.impl == impl]

    @property
    def memory_root(self) -> Any:
        return self.components[self.graph.memory_root] if self.graph.memory_root else None

    def finalize(self, end_ps: int) -> None:
        """Finalize every component, upstream first (a driver before the memories it used)."""
        for name in reversed(list(self.components)):
            self.components[name].finalize(end_ps)


def build(sim: Any, graph: Graph, ctx: BuildContext | None = None) -> System:
    """Instantiate ``graph`` (call :meth:`Graph.errors` first) in :meth:`Graph.order`."""
    ctx = ctx or BuildContext(sim)
    ctx.graph = graph
    for name in graph.order():
        node = graph.nodes[name]
        ctx.built[name] = kind(node.impl).build(ctx, node)
    system = System(sim, graph, dict(ctx.built), ctx.table_map)
    if ctx.table_map is not None:
        ctx.table_map.root = system.memory_root
    return system


def describe(graph: Graph) -> str:
    """The graph as indented text: one line per component (name, impl, wiring), in build order."""
    lines = []
    width = max((len(n) for n in graph.nodes), default=0)
    for name in graph.order():
        node = graph.nodes[name]
        wires = ", ".join(f"{'.'.join(str(p) for p in rel)} -> {t}" for rel, t in node.refs())
        role = " [host]" if name in graph.hosts else ""
        role += " [memory root]" if name == graph.memory_root else ""
        lines.append(f"{name:{width}s}  {node.impl:14s}{('  ' + wires) if wires else ''}{role}")
    return "\n".join(lines)


def to_dot(graph: Graph) -> str:
    """Graphviz source of the graph (requests flow along the arrows, from drivers down to memories)."""
    out = ["digraph archsim {", "  rankdir=TB;", "  node [shape=box, fontname=Helvetica];"]
    for name, node in graph.nodes.items():
        shape = ", shape=ellipse" if name in graph.hosts else ""
        out.append(f'  "{name}" [label="{name}\\n({node.impl})"{shape}];')
    for a, b, label in graph.edges():
        out.append(f'  "{a}" -> "{b}" [label="{label}", fontsize=9];')
    out.append("}")
    return "\n".join(out) + "\n"
