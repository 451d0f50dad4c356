"""``flux archive``: store files in an RFC 37 archive under one KVS key (flux-archive(1)).

``flux archive create [-n NAME] [-C DIR] PATH...`` commits ``archive.NAME``
(default ``main``) to the primary namespace: a JSON array of RFC 37 file objects,
one per file, directory or symlink (directories walked depth first, their
contents before them). A small regular file (up to ``--small-file-threshold``,
1K) carries its data in the object (``utf-8`` or ``base64``); a larger one is a
``blobvec``: ``[offset, size, blobref]`` chunks of ``--chunksize`` (1M) stored
in the content store, holes of a sparse file skipped. ``--preserve`` also links
each blob under ``archive.NAME_blobs``. ``list``, ``extract`` and ``remove`` read
and expunge it, from any rank. Modes round trip (less the umask, as flux's
libarchive extraction applies it); ``--mmap`` is accepted and copies instead.
"""

from __future__ import annotations

import argparse
import base64
import errno
import fnmatch
import json
import os
import stat
import sys

from .common import CommandError, command, handle, parser

DEFAULT_NAME = "main"
DEFAULT_CHUNKSIZE = "1M"
DEFAULT_SMALL_FILE_THRESHOLD = "1K"
INT_MAX = 2**31 - 1
_PROG = "flux"   # the prefix of messages: flux, or fluxnb outside an instance


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_archive(name, argv, prog)


class _Usage(Exception):
    """Print the subcommand's usage and exit 1, as flux's optparse does."""


def parse_size(text: str, option: str) -> int:
    """``N[kKMG]`` (a float allowed) -> bytes, up to INT_MAX, as optparse_get_size_int."""
    scale = {"k": 1024, "K": 1024, "M": 1024**2, "G": 1024**3}
    num, mult = (text[:-1], scale[text[-1]]) if text and text[-1] in scale else (text, 1)
    try:
        value = float(num) * mult
    except ValueError:
        raise CommandError(f"invalid value '{text}' for option '{option}'") from None
    if not 0 <= value <= INT_MAX:
        raise CommandError(f"invalid value '{text}' for option '{option}'")
    return int(value)


def _strerror(exc: BaseException) -> str:
    num = getattr(exc, "errno", None)
    return os.strerror(num) if num else str(exc)


def _verbosity(argv: list[str]) -> tuple[list[str], int]:
    """Take out ``-v``, ``-vN``, ``--verbose`` and ``--verbose=N`` (an optional argument,
    attached only, as optparse's): the rest of argv and the level."""
    rest, level = [], 0
    for i, arg in enumerate(argv):
        if arg == "--":
            rest += argv[i:]
            break
        if arg in ("-v", "--verbose"):
            level += 1
        elif arg.startswith("--verbose="):
            level = _level(arg.split("=", 1)[1])
        elif arg.startswith("-v") and arg[2:].isdigit():
            level = int(arg[2:])
        else:
            rest.append(arg)
    return rest, level


def _level(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"invalid verbose level '{text}'") from None


def pretty(fileref: dict, long_form: bool, bufsize: int) -> str:
    """One line for a file object, as flux's fileref_pretty_print (``+`` marks a cut)."""
    path, mode, size = fileref.get("path"), fileref.get("mode"), fileref.get("size", 0)
    if not isinstance(path, str) or not isinstance(mode, int) or not isinstance(size, int):
        text = "invalid fileref"
    elif long_form:
        kind = ("f" if stat.S_ISREG(mode) else "l" if stat.S_ISLNK(mode)
                else "d" if stat.S_ISDIR(mode) else "?")
        text = f"{kind} 0{mode & 0o777:o} {size:8d} {path}"
    else:
        text = path
    if len(text) >= bufsize:
        text = text[:bufsize - 2] + "+"
    return text


# -- create ------------------------------------------------------------------------
class _Creator:
    def __init__(self, h, name: str, namespace: str | None, verbose: int, threshold: int,
                 chunksize: int, preserve: bool, archive: list, blob_seq: int):
        self.h, self.name, self.namespace = h, name, namespace
        self.verbose, self.threshold, self.chunksize = verbose, threshold, chunksize
        self.preserve = preserve
        self.archive = archive
        self.blob_seq = blob_seq
        self.blob_ops: list[tuple[str, str]] = []   # (key, blobref) for --preserve

    def add_path(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise CommandError(f"{path}: {_strerror(exc)}") from None
        if stat.S_ISDIR(st.st_mode):
            self._walk(path)
        else:
            self._add(path)

    def _walk(self, top: str) -> None:
        """Depth first, a directory after its contents (flux's dirwalk DEPTH|FIND_DIR)."""
        try:
            names = sorted(os.listdir(top))
        except OSError as exc:
            raise CommandError(f"{top}: {_strerror(exc)}") from None
        for entry in names:
            self.add_path(os.path.join(top, entry))
        if top != ".":
            self._add(top)

    def _add(self, path: str) -> None:
        if self.verbose > 0:
            print(path, flush=True)
        self.archive.append(self.fileref(path))

    def fileref(self, path: str) -> dict:
        rel = path.lstrip("/") or "."
        fd = -1
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            st = os.fstat(fd)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise CommandError(f"{path}: {_strerror(exc)}") from None
            try:
                st = os.lstat(path)
            except OSError as exc2:
                raise CommandError(f"{path}: {_strerror(exc2)}") from None
        try:
            times = {"mtime": int(st.st_mtime), "ctime": int(st.st_ctime)}
            if stat.S_ISREG(st.st_mode):
                os.set_blocking(fd, True)
                return self._regular(path, rel, fd, st, times)
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(path)
                except OSError as exc:
                    raise CommandError(f"readlink {path}: {_strerror(exc)}") from None
                return {"path": rel, "data": target, **times, "mode": st.st_mode}
            if stat.S_ISDIR(st.st_mode):
                return {"path": rel, **times, "mode": st.st_mode}
            raise CommandError(f"{path}: unsupported file type")
        finally:
            if fd >= 0:
                os.close(fd)

    def _regular(self, path: str, rel: str, fd: int, st, times: dict) -> dict:
        base = {"path": rel}
        tail = {"size": st.st_size, **times, "mode": st.st_mode}
        if _no_data(fd, st.st_size):
            return {**base, **tail}
        if st.st_size > self.threshold:
            return {**base, "encoding": "blobvec", "data": self._blobvec(path, fd, st.st_size),
                    **tail}
        try:
            data = _read_all(fd)
        except OSError as exc:
            raise CommandError(f"{path}: {_strerror(exc)}") from None
        if len(data) < st.st_size:
            raise CommandError(f"{path}: short read")
        try:
            if b"\0" in data:   # flux's extraction writes a utf-8 string up to its first NUL
                raise UnicodeDecodeError("utf-8", data, 0, 1, "NUL")
            return {**base, "encoding": "utf-8", "data": data.decode("utf-8"), **tail}
        except UnicodeDecodeError:
            return {**base, "encoding": "base64", "data": base64.b64encode(data).decode(),
                    **tail}

    def _blobvec(self, path: str, fd: int, size: int) -> list:
        chunksize = self.chunksize or size
        blobvec, offset = [], 0
        while offset < size:
            try:
                offset = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                raise CommandError(f"{path}: error creating blobvec array: {_strerror(exc)}")
            try:
                notdata = os.lseek(fd, offset, os.SEEK_HOLE)
            except OSError:
                notdata = size
            blobsize = min(notdata - offset, chunksize)
            data = os.pread(fd, blobsize, offset)
            if len(data) < blobsize:
                raise CommandError(f"{path}: short read")
            blobref = self._store(path, data)
            blobvec.append([offset, blobsize, blobref])
            if self.preserve:
                self.blob_ops.append((f"archive.{self.name}_blobs.{self.blob_seq}", blobref))
                self.blob_seq += 1
            offset += blobsize
        return blobvec

    def _store(self, path: str, data: bytes) -> str:
        from ..runtime.message import FluxError
        try:
            digest = self.h.rpc("content.store", data, nodeid=0).get_raw()
        except FluxError as exc:
            raise CommandError(f"{path}: error storing blob: {exc}") from None
        hash_name = {20: "sha1", 32: "sha256"}.get(len(digest))
        if hash_name is None:
            raise CommandError(f"{path}: error storing blob: unexpected digest")
        return f"{hash_name}-{bytes(digest).hex()}"


def _no_data(fd: int, size: int) -> bool:
    if size == 0:
        return True
    try:
        os.lseek(fd, 0, os.SEEK_DATA)
    except OSError as exc:
        return exc.errno == errno.ENXIO
    finally:
        os.lseek(fd, 0, os.SEEK_SET)
    return False


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _lookup(h, key: str, namespace: str | None, flags: int = 0, timeout: float | None = None):
    """The archive (a list) at ``key``; FluxError if absent."""
    import fluxnb.kvs as K
    if flags:
        payload = {"key": key, "flags": flags}
        ns = K._namespace(namespace)
        if ns:
            payload["namespace"] = ns
        val = h.rpc("kvs-watch.lookup", payload, nodeid=0).get(timeout)["val"]
        data = base64.b64decode(val["data"]) if val.get("data") else b""
        return K.decode_value(data)
    return K.get_key_direct(h, key, namespace)


def _exists(h, key: str, namespace: str | None) -> bool:
    import fluxnb.kvs as K
    from ..runtime.message import FluxError
    try:
        K.lookup(h, key, namespace, K.FLUX_KVS_TREEOBJ)
        return True
    except FluxError:
        return False


def _unlink_archive(h, namespace: str | None, name: str, force: bool) -> None:
    import fluxnb.kvs as K
    from ..runtime.message import FluxError
    key, key_blobs = f"archive.{name}", f"archive.{name}_blobs"
    if not force and not _exists(h, key, namespace):
        raise CommandError(f"{key} does not exist")
    txn = K.KVSTxn(h, namespace=namespace)
    txn.put_unlink(key)
    txn.put_unlink(key_blobs)
    try:
        txn.commit()
    except FluxError as exc:   # flux logs this one and goes on
        print(f"{_PROG}-archive: unlink {key},{key_blobs}: {exc}", file=sys.stderr)


def _namespace(args) -> str | None:
    return None if args.no_force_primary else "primary"


def do_create(h, args, verbose: int) -> None:
    import fluxnb.kvs as K
    from ..runtime.message import FluxError
    if not args.paths:
        raise _Usage()
    if args.mmap:
        if int(h.attr_get("rank")) > 0:
            raise CommandError("--mmap only works on the rank 0 broker")
        if args.preserve:
            raise CommandError("--mmap cannot work with --preserve")
        if args.no_force_primary:
            raise CommandError("--mmap cannot work with --no-force-primary")
    if args.overwrite and args.append:
        raise CommandError("--overwrite and --append cannot be used together")
    chunksize = parse_size(args.chunksize, "chunksize")
    threshold = parse_size(args.small_file_threshold, "small-file-threshold")
    ns = _namespace(args)
    key = f"archive.{args.name}"
    if args.directory:
        try:
            os.chdir(args.directory)
        except OSError as exc:
            raise CommandError(f"chdir {args.directory}: {_strerror(exc)}") from None
    archive: list = []
    blob_seq = 0
    if args.overwrite:
        _unlink_archive(h, ns, args.name, True)
    else:
        try:
            existing = _lookup(h, key, ns)
        except FluxError:
            existing = None
        if existing is not None:
            if not args.append:
                raise CommandError(f"{key}: key exists")
            if not isinstance(existing, list):
                raise CommandError(f"{key}: not an RFC 37 archive (a JSON array)")
            archive = existing
            if args.preserve:   # number new blob keys after the ones there
                try:
                    blob_seq = len(K.listdir(h, f"{key}_blobs", ns))
                except FluxError:
                    blob_seq = 0
    creator = _Creator(h, args.name, ns, verbose, threshold, chunksize, args.preserve,
                       archive, blob_seq)
    for path in args.paths:
        creator.add_path(path)
    txn = K.KVSTxn(h, namespace=ns)
    for blob_key, blobref in creator.blob_ops:
        txn.put_treeobj(blob_key, {"ver": 1, "type": "valref", "data": [blobref]})
    txn.put_raw(key, json.dumps(creator.archive, separators=(",", ":")))  # compact, as flux
    try:
        txn.commit()
    except FluxError as exc:
        raise CommandError(f"kvs commit: {exc}") from None


def do_remove(h, args) -> None:
    if args.extra:
        raise _Usage()
    _unlink_archive(h, _namespace(args), args.name, args.force)


def _fetch(h, args, flags: int = 0, timeout: float | None = None) -> list:
    from ..runtime.message import FluxError
    key = f"archive.{args.name}"
    try:
        archive = _lookup(h, key, _namespace(args), flags, timeout)
    except TimeoutError:
        raise CommandError(f"{key}: key was not created within timeout window") from None
    except FluxError as exc:
        raise CommandError(f"KVS lookup {key}: {_strerror(exc)}") from None
    if not isinstance(archive, list):
        raise CommandError(f"{key}: not an RFC 37 archive (a JSON array)")
    if args.pattern is not None:
        archive = [e for e in archive if isinstance(e, dict) and isinstance(e.get("path"), str)
                   and fnmatch.fnmatchcase(e["path"], args.pattern)]
        if not archive:
            print(f"{_PROG}-archive: No files matched pattern '{args.pattern}'", file=sys.stderr)
    return archive


def do_list(h, args) -> None:
    if args.extra:
        raise _Usage()
    for entry in _fetch(h, args):
        if args.raw:
            print(json.dumps(entry, separators=(",", ":")), end="")
        else:
            print(pretty(entry, args.long, 120))
    sys.stdout.flush()


def do_extract(h, args, verbose: int) -> None:
    from ..runtime.kvs.flags import FLUX_KVS_WAITCREATE
    from ..runtime.util.fsd import parse_fsd
    if args.extra:
        raise _Usage()
    flags, timeout = 0, None
    if args.waitcreate is not None:
        flags = FLUX_KVS_WAITCREATE
        if args.waitcreate:
            try:
                timeout = parse_fsd(args.waitcreate)
            except ValueError:
                raise CommandError("could not parse --waitcreate timeout: Invalid argument") \
                    from None
            if timeout == float("inf"):
                timeout = None
    if args.directory:
        try:
            os.chdir(args.directory)
        except OSError as exc:
            raise CommandError(f"chdir {args.directory}: {_strerror(exc)}") from None
    archive = _fetch(h, args, flags, timeout)
    if args.list_only:
        for entry in archive:
            print(pretty(entry, verbose > 0, 80))
        return
    _Extractor(h, args.overwrite, verbose).extract(archive)


# -- extract -----------------------------------------------------------------------
class _Extractor:
    def __init__(self, h, overwrite: bool, verbose: int):
        self.h, self.overwrite, self.verbose = h, overwrite, verbose
        self.umask = os.umask(0)
        os.umask(self.umask)
        self.dir_modes: dict[str, int] = {}   # directories to chmod at the end
        self.made: set[str] = set()           # directories this extraction created

    def extract(self, archive: list) -> None:
        for entry in archive:
            self.extract_file(entry)
        for path in sorted(self.dir_modes, key=len, reverse=True):
            try:
                os.chmod(path, self.dir_modes[path])
            except OSError as exc:
                raise CommandError(f"{path}: {_strerror(exc)}") from None

    def _mode(self, mode: int) -> int:
        return mode & 0o777 & ~self.umask

    def _parents(self, path: str) -> None:
        parent = os.path.dirname(path)
        if not parent or os.path.isdir(parent):
            return
        self._parents(parent)
        try:
            os.mkdir(parent, 0o777 & ~self.umask)
            self.made.add(os.path.normpath(parent))
        except FileExistsError:
            pass
        except OSError as exc:
            raise CommandError(f"{parent}: {_strerror(exc)}") from None

    def extract_file(self, entry) -> None:
        if not isinstance(entry, dict):
            raise CommandError("error decoding fileref object: expected an object")
        path, mode = entry.get("path"), entry.get("mode")
        size, encoding, data = entry.get("size", -1), entry.get("encoding"), entry.get("data")
        if not isinstance(path, str) or not path or not isinstance(mode, int) \
                or not isinstance(size, int):
            raise CommandError("error decoding fileref object: path, mode or size missing "
                               "or of the wrong type")
        if self.verbose > 0:
            print(path, file=sys.stderr, flush=True)
        self._parents(path)
        if stat.S_ISDIR(mode):
            return self._directory(path, mode)
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise CommandError(f"{path}: unknown file type (mode=0{mode:o})")
        if stat.S_ISLNK(mode) and not isinstance(data, str):
            raise CommandError(f"{path}: missing symlink data")
        if os.path.lexists(path):
            if not self.overwrite:
                has_data = stat.S_ISREG(mode) and data is not None and size != 0
                if has_data:
                    raise CommandError(f"{path}: write: Attempt to overwrite existing file")
                return   # libarchive leaves what is there
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                else:
                    os.unlink(path)
            except OSError as exc:
                raise CommandError(f"{path}: {_strerror(exc)}") from None
        if stat.S_ISLNK(mode):
            try:
                os.symlink(data, path)
            except OSError as exc:
                raise CommandError(f"{path}: {_strerror(exc)}") from None
            return
        self._regular(path, mode, size, encoding, data)

    def _directory(self, path: str, mode: int) -> None:
        norm = os.path.normpath(path)
        if os.path.isdir(path) and not os.path.islink(path):
            if self.overwrite or norm in self.made:
                self.dir_modes[path] = self._mode(mode)
            return
        if os.path.lexists(path):
            if not self.overwrite:
                raise CommandError(f"{path}: Already exists")
            try:
                os.unlink(path)
            except OSError as exc:
                raise CommandError(f"{path}: {_strerror(exc)}") from None
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            raise CommandError(f"{path}: {_strerror(exc)}") from None
        self.made.add(norm)
        self.dir_modes[path] = self._mode(mode)

    def _regular(self, path: str, mode: int, size: int, encoding, data) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise CommandError(f"{path}: {_strerror(exc)}") from None
        try:
            if data is not None:
                if encoding is None:   # JSON content, as RFC 37 allows
                    os.write(fd, json.dumps(data, separators=(",", ":")).encode())
                elif encoding == "base64":
                    try:
                        os.write(fd, base64.b64decode(data, validate=True))
                    except (TypeError, ValueError):
                        raise CommandError(f"{path}: could not decode base64 file data") \
                            from None
                elif encoding == "utf-8":
                    if not isinstance(data, str):
                        raise CommandError(f"{path}: unexpected data type for utf8")
                    os.write(fd, data.encode("utf-8"))
                elif encoding == "blobvec":
                    self._blobvec(fd, path, data)
                else:
                    raise CommandError(f"{path}: unknown RFC 37 encoding {encoding}")
            if size >= 0:
                os.ftruncate(fd, size)
            os.fchmod(fd, self._mode(mode))
        except OSError as exc:
            raise CommandError(f"{path}: write: {_strerror(exc)}") from None
        finally:
            os.close(fd)

    def _blobvec(self, fd: int, path: str, data) -> None:
        from ..runtime.message import FluxError
        if not isinstance(data, list):
            raise CommandError(f"{path}: error decoding blobvec entry")
        for item in data:
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int)
                    and isinstance(item[1], int) and isinstance(item[2], str)):
                raise CommandError(f"{path}: error decoding blobvec entry")
            offset, size, blobref = item
            where = f"{path}: error loading offset={offset} size={size} from {blobref}"
            try:
                blob = self.h.rpc("content.load", blobref.encode() + b"\0",
                                  nodeid=0).get_raw()
            except FluxError as exc:
                raise CommandError(f"{where}: {exc}") from None
            if len(blob) != size:
                raise CommandError(f"{where}: unexpected size {len(blob)}")
            os.pwrite(fd, bytes(blob), offset)


# -- the command -------------------------------------------------------------------
def _parsers(prog: str, name: str) -> argparse.ArgumentParser:
    p = parser(prog, name, "Flux KVS file archive utility")
    sub = p.add_subparsers(dest="action", metavar="{create,remove,extract,list}")
    sub.required = True

    def common(sp, verb: str) -> None:
        sp.add_argument("-n", "--name", default=DEFAULT_NAME,
                        help=f"{verb} archive NAME (default main)")
        sp.add_argument("--no-force-primary", action="store_true",
                        help="Do not force archive to be in the primary KVS namespace")

    c = sub.add_parser("create", help="Create a KVS file archive",
                       usage=f"{prog} {name} create [-n NAME] [-C DIR] [--preserve] PATH ...")
    common(c, "Write to")
    c.add_argument("-C", "--directory", metavar="DIR", help="Change to DIR before reading files")
    c.add_argument("--overwrite", action="store_true", help="Overwrite existing archive")
    c.add_argument("--append", action="store_true", help="Append to existing archive")
    c.add_argument("--preserve", action="store_true", help="Preserve data over Flux restart")
    c.add_argument("--mmap", action="store_true",
                   help="Use mmap(2) to map file content (fluxnb copies it)")
    c.add_argument("--chunksize", default=DEFAULT_CHUNKSIZE, help=argparse.SUPPRESS)
    c.add_argument("--small-file-threshold", default=DEFAULT_SMALL_FILE_THRESHOLD,
                   help=argparse.SUPPRESS)
    c.add_argument("paths", nargs="*", metavar="PATH")

    r = sub.add_parser("remove", help="Remove a KVS file archive",
                       usage=f"{prog} {name} remove [-n NAME] [-f]")
    common(r, "Remove")
    r.add_argument("-f", "--force", action="store_true", help="Ignore a nonexistent archive")
    r.add_argument("extra", nargs="*", help=argparse.SUPPRESS)

    e = sub.add_parser("extract", help="Extract KVS file archive contents",
                       usage=f"{prog} {name} extract [-n NAME] [--overwrite] [-C DIR] [PATTERN]")
    common(e, "Read from")
    e.add_argument("-C", "--directory", metavar="DIR", help="Change to DIR before extracting")
    e.add_argument("--overwrite", action="store_true",
                   help="Overwrite existing files when extracting")
    e.add_argument("--waitcreate", nargs="?", const="", default=None, metavar="FSD",
                   help="Wait for KVS archive key to appear (timeout optional)")
    e.add_argument("-t", "--list-only", action="store_true",
                   help="List table of contents without extracting")
    e.add_argument("pattern", nargs="?", metavar="PATTERN")
    e.add_argument("extra", nargs="*", help=argparse.SUPPRESS)

    ls = sub.add_parser("list", help="List KVS file archive contents",
                        usage=f"{prog} {name} list [-n NAME] [PATTERN]")
    common(ls, "Read from")
    ls.add_argument("-l", "--long", action="store_true", help="Show file type, mode, size")
    ls.add_argument("--raw", action="store_true",
                    help="Show raw RFC 37 file system object without decoding")
    ls.add_argument("pattern", nargs="?", metavar="PATTERN")
    ls.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    return p


@command
def cmd_archive(name, argv, prog):
    global _PROG
    _PROG = prog
    argv, verbose = _verbosity(argv)
    p = _parsers(prog, name)
    argv = _attach_waitcreate(argv)
    args = p.parse_args(argv)
    if verbose and args.action not in ("create", "extract"):
        p.error(f"unrecognized option for {args.action}: -v")
    try:
        with handle() as h:
            if args.action == "create":
                do_create(h, args, verbose)
            elif args.action == "remove":
                do_remove(h, args)
            elif args.action == "extract":
                do_extract(h, args, verbose)
            else:
                do_list(h, args)
    except _Usage:
        sub = p._subparsers._group_actions[0].choices[args.action]   # noqa: SLF001
        sub.print_help(sys.stderr)   # as flux's optparse: the whole help, exit 1
        return 1
    return 0


def _attach_waitcreate(argv: list[str]) -> list[str]:
    """``--waitcreate`` alone takes no value (the next word stays a PATTERN):
    written as ``--waitcreate=`` for argparse, which reads it as no timeout."""
    return ["--waitcreate=" if a == "--waitcreate" else a for a in argv]
