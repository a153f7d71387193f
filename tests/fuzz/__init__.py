"""A fuzzing campaign for archsim's input handling (issue #12): mutate every shipped hwconfig, workload, sweep
spec and trace, run the command line on each mutant in a forked child with a time limit, and classify what
happened against the error contract (docs/reliability.md).

- :mod:`.corpus`: the seeds, found by glob (a new ``hwconfigs/*.yaml`` is fuzzed without edits);
- :mod:`.mutations`: the edits (wrong types, out-of-range numbers, missing and unknown keys, broken YAML, bad
  bytes and encodings, ``extends:`` cycles, bad ``--set``, bad trace lines, corrupt gzip and npz);
- :mod:`.strategies`: hypothesis strategies that draw a :class:`~.case.Case` per input kind;
- :mod:`.harness`: runs a case in a forked child (``archsim.cli.main(argv)``), with a timeout and a memory cap;
- :mod:`.classify`: the outcome of a run (ok, input error with file:line, internal error, traceback, hang...);
- :mod:`.campaign`: ``make fuzz`` (``python -m tests.fuzz.campaign``), parallel, with a JSON report.
"""
