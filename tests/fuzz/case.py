"""A fuzz case: the files to write into a sandbox, the command line to run there, and what was mutated."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("hwconfig", "workload", "sweep", "trace")
"""The input kinds of a campaign; each gets its own case count."""


@dataclass
class Case:
    """One command line on one mutated input.

    ``argv`` is relative to the sandbox (the child runs with the sandbox as its working directory), whose
    ``hwconfigs/``, ``workloads/`` and ``examples/`` hold the shipped files (as links) next to the mutants, so
    relative ``extends:`` and paths resolve as in the repository. ``files`` (sandbox path -> bytes) are written
    after ``copies`` (sandbox directory -> seed name, see :func:`.corpus.seed_dir`) are copied in. ``results``
    are the files that make a result look complete (``out/run/summary.csv``): none may exist after an error.
    ``max_points``: a sweep whose spec expands to more points is only dry-run (``--dry-run``).
    """

    kind: str
    seed: str
    command: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    copies: dict[str, str] = field(default_factory=dict)
    mutations: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    max_points: int | None = None

    def describe(self) -> str:
        """One line: the seed, the command and the mutations."""
        return f"{self.kind}:{self.seed} [{self.command}] " + "; ".join(self.mutations)

    def to_json(self) -> dict:
        """The case without the file contents (they are saved next to it)."""
        return {"kind": self.kind, "seed": self.seed, "command": self.command, "argv": self.argv,
                "files": sorted(self.files), "copies": self.copies, "mutations": self.mutations,
                "results": self.results, "max_points": self.max_points}
