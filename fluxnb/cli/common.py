"""What every fluxnb subcommand shares: argument parsing, the handle, error reporting."""

from __future__ import annotations

import argparse
import functools
import os
import sys

TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from typing import Callable


class CommandError(Exception):
    """A user mistake to report as one line (``flux-CMD: message``) with exit code 1."""


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (and with it
    bz2, lzma, ...) into every command: argparse's formatter asks for it at each
    ``add_argument``."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # argparse exits 2 with usage, as flux does
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parser(prog: str, cmd: str, description: str) -> argparse.ArgumentParser:
    return _Parser(prog=f"{prog} {cmd}", description=description)


def handle():
    from ..runtime.client import Flux
    return Flux()


def command(fn: Callable) -> Callable:
    """Run a subcommand body, turning Flux errors into ``flux-CMD: message``."""

    @functools.wraps(fn)
    def run(name: str, argv: list[str], prog: str) -> int:
        from ..runtime.message import FluxError
        try:
            return fn(name, argv, prog) or 0
        except (FluxError, CommandError) as exc:
            print(f"{prog}-{name}: {exc}", file=sys.stderr)
            return 1
        except TimeoutError as exc:
            print(f"{prog}-{name}: {exc}", file=sys.stderr)
            return 1

    return run


def raise_in_thread(thread_ident: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in another thread at its next Python instruction.

    A handle's blocking receive wakes every second (``RCVTIMEO``), so a thread
    waiting on a broker sees it within a second. Used where a signal cannot be:
    signals reach only the main thread. Returns whether the thread was found.
    """
    import ctypes
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_ident),
                                                      ctypes.py_object(exc_type)) == 1


def parse_ranks(spec: str, size: int) -> list[int]:
    """Parse ``all`` or an RFC 22 idset of ranks, checking each is < size."""
    from ..runtime.util.idset import IDSet
    if spec == "all":
        return list(range(size))
    try:
        ranks = list(IDSet(spec))
    except ValueError as exc:
        raise CommandError(f"invalid rank list {spec!r}: {exc}") from None
    bad = [r for r in ranks if r >= size]
    if bad:
        raise CommandError(f"rank {bad[0]} is not in the instance (size {size})")
    return ranks
