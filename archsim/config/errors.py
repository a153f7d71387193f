"""Errors raised for bad user input (configs, overrides, workloads).

Every error a user can fix by editing their input derives from :class:`InputError`; the CLI prints ``str(err)``
as a single line and exits with status 2. :class:`ConfigError` adds a location: the file, the line and the
dotted key path of the offending value, rendered as ``FILE:LINE: KEY.PATH: MESSAGE``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InputError", "ConfigError"]


class InputError(Exception):
    """Base class for every error caused by user input (the CLI exits with status 2 on it)."""


class ConfigError(InputError):
    """A configuration error with an optional location.

    Attributes:
        file: the file the bad value came from (or a pseudo-source such as ``--set a.b=1``), if known.
        line: the 1-based line in ``file``, if known.
        path: the dotted key path of the bad value (``dram.channels[0].ranks``), if known.
        message: what is wrong, without the location.

    ``str(err)`` is one line: ``FILE:LINE: KEY.PATH: MESSAGE``, leaving out the parts that are ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.path = path or None
        super().__init__(str(self))

    def __str__(self) -> str:
        parts: list[str] = []
        file = None if self.file is None else _escaped(str(self.file))  # a --set value may hold a line break
        if file is not None and self.line is not None:
            parts.append(f"{file}:{self.line}")
        elif file is not None:
            parts.append(file)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(_escaped(str(self.path)))
        parts.append(_one_line(self.message))
        return ": ".join(parts)

    def __repr__(self) -> str:
        return f"ConfigError(message={self.message!r}, file={self.file!r}, line={self.line!r}, path={self.path!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the location when the error crosses a process boundary (sweep executors pickle exceptions).
        return (_rebuild_config_error, (type(self), self.message, self.file, self.line, self.path))

    def with_location(
        self, *, file: str | None = None, line: int | None = None, path: str | None = None
    ) -> ConfigError:
        """Return a copy whose missing location parts are filled in from the arguments."""
        return type(self)(
            self.message,
            file=self.file if self.file is not None else file,
            line=self.line if self.line is not None else line,
            path=self.path if self.path is not None else path,
        )


def _one_line(text: str) -> str:
    """Collapse line breaks so the message fits on one line (other control characters are escaped)."""
    lines = [part.strip() for part in str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _escaped("; ".join(part for part in lines if part))


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), 127] if c != 9} | {10: "\\n", 13: "\\r"}


def _escaped(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\x00``): one line, and
    nothing that moves a terminal's cursor, whatever a file name or an echoed value holds."""
    return text.translate(_CONTROL)


def _rebuild_config_error(
    cls: type[ConfigError], message: str, file: str | None, line: int | None, path: str | None
) -> ConfigError:
    return cls(message, file=file, line=line, path=path)


def run_guarded(fn, *args, interrupted: str = "interrupted") -> int:
    """Run a command function the way the command line does: bad input (:class:`InputError`, so also
    :class:`ConfigError`) is one line on stderr and exit status 2; Ctrl-C is exit status 130; a reader of the
    output that went away (``| head``) ends the command quietly, exit status 141; any other exception is a bug:
    one line naming it and the file that holds the full traceback, exit status 1."""
    import sys

    try:
        return fn(*args)
    except InputError as e:
        print(f"archsim: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"archsim: {interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError as e:
        if _stdout_closed():  # the reader of our output went away (``archsim schema | head``): stop quietly
            return 141  # 128 + SIGPIPE, as the shell's tools exit
        return _internal(e)
    except Exception as e:  # noqa: BLE001 - the last resort of the command line: no raw traceback
        return _internal(e)


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone; if so, it is pointed at /dev/null, so that the
    interpreter's last flush at exit does not print 'Exception ignored ... BrokenPipeError'."""
    import os
    import select
    import sys

    try:
        fd = sys.stdout.fileno()
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        gone = any(ev & select.POLLERR for _, ev in poll.poll(0))  # a pipe with no reader left
    except (AttributeError, ValueError, OSError):
        return False
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
    return gone


def _internal(e: BaseException) -> int:
    """A bug: one line naming it and the file with the full traceback; exit status 1."""
    import sys

    log = write_crash_log(e)
    print(f"archsim: internal error: {type(e).__name__}: {_one_line(str(e))[:300]} (a bug; full traceback in "
          f"{log})", file=sys.stderr)
    return 1


def write_crash_log(exc: BaseException) -> str:
    """Write ``exc``'s traceback (and the command line) to a new file in the temporary directory; its path."""
    import os
    import sys
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="archsim-crash-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write("command: " + " ".join(sys.argv) + "\n\n")
        f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return path
