"""Run a command and publish, with DYAD, the files it writes under the producer directory.

DYAD's C wrapper is an ``LD_PRELOAD`` library that intercepts ``close``/``fclose``
(publish) and ``open``/``fopen`` (consume). A Python process cannot preload itself
into arbitrary programs, so this wrapper watches instead:

What it intercepts
    every file under ``DYAD_PATH_PRODUCER`` (subdirectories included) that any
    process closes after writing (inotify ``IN_CLOSE_WRITE``) or moves into place
    (``IN_MOVED_TO``), published as soon as it is closed; at exit, anything written
    but not yet seen (a subdirectory created and filled before its watch was added,
    or a system without inotify: then everything is published at exit).
What it cannot intercept
    opens for reading: a consumer command is not held until its input exists, so
    list inputs with ``--consume PATH`` (fetched before the command starts) or use
    ``flux dyad consume``; writes to a file that stays open until the command ends
    (published at exit, not at close); files written outside the producer
    directory, or through a symlink pointing out of it; files mapped with ``mmap``
    and modified without a close; and writers that are not children of the
    wrapper are seen too (inotify watches the directory, not the process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import subprocess
from pathlib import Path
from typing import Callable

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
_EVENT = struct.Struct("iIII")


class _Inotify:
    """A minimal recursive inotify watcher over libc (no third-party dependency)."""

    def __init__(self, root: Path):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.dirs: dict[int, Path] = {}
        self.add_tree(root)

    def add(self, path: Path) -> None:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path),
                                         IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)
        if wd >= 0:
            self.dirs[wd] = path

    def add_tree(self, root: Path) -> None:
        self.add(root)
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                self.add(Path(dirpath) / d)

    def read(self, timeout: float) -> list[Path]:
        """Paths closed-after-write or moved in since the last call."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i < len(buf):
            wd, mask, _, length = _EVENT.unpack_from(buf, i)
            name = buf[i + _EVENT.size:i + _EVENT.size + length].rstrip(b"\0").decode(errors="replace")
            i += _EVENT.size + length
            parent = self.dirs.get(wd)
            if parent is None or not name:
                continue
            path = parent / name
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    self.add_tree(path)
            elif mask & (IN_CLOSE_WRITE | IN_MOVED_TO) and not name.startswith("."):
                out.append(path)
        return out

    def close(self) -> None:
        os.close(self.fd)


def _scan(root: Path) -> dict[Path, float]:
    seen = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.startswith("."):
                p = Path(dirpath) / name
                try:
                    seen[p] = p.stat().st_mtime
                except OSError:
                    pass
    return seen


def run_and_publish(cmd: list[str], prod_path: Path, publish: Callable[[Path], object],
                    env: dict | None = None) -> int:
    """Run ``cmd``; publish each file it writes under ``prod_path``; return its exit code."""
    prod_path.mkdir(parents=True, exist_ok=True)
    before = _scan(prod_path)
    published: dict[Path, float] = {}

    def emit(p: Path) -> None:
        try:
            mtime = p.stat().st_mtime
        except OSError:
            return
        if published.get(p) != mtime:
            publish(p)
            published[p] = mtime

    try:
        watcher: _Inotify | None = _Inotify(prod_path)
    except (OSError, AttributeError):
        watcher = None
    proc = subprocess.Popen(cmd, env=env)
    try:
        while proc.poll() is None:
            if watcher is None:
                try:
                    proc.wait(0.2)
                except subprocess.TimeoutExpired:
                    pass
                continue
            for p in watcher.read(0.1):
                emit(p)
        if watcher is not None:
            for p in watcher.read(0):
                emit(p)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if watcher is not None:
            watcher.close()
    for p, mtime in _scan(prod_path).items():
        if before.get(p) != mtime and p not in published:
            emit(p)
    return proc.returncode
