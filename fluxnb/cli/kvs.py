"""``flux kvs``: get, put, ls, dir, unlink, mkdir, link, readlink, watch, getroot,
namespace create|remove|list, eventlog get|append|wait-event, version, wait."""

from __future__ import annotations

import argparse
import base64
import errno
import json
import os
import shutil
import sys
import time

from .. import kvs as K
from ..runtime.message import FluxError
from .common import CommandError, command, handle, parser


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_kvs(name, argv, prog)


def _add_ns(p):
    p.add_argument("-N", "--namespace", default=None, help="KVS namespace")


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = parser(prog, "kvs", "Access the Flux key-value store.")
    sub = p.add_subparsers(dest="sub", required=True, metavar="COMMAND")

    s = sub.add_parser("get", help="print values")
    _add_ns(s)
    s.add_argument("-r", "--raw", action="store_true", help="no newline; raw bytes")
    s.add_argument("-t", "--treeobj", action="store_true", help="print the RFC 11 object")
    s.add_argument("-a", "--at", default=None, metavar="TREEOBJ", help="look up at this root")
    s.add_argument("-l", "--label", action="store_true", help="prefix with key=")
    s.add_argument("-W", "--waitcreate", action="store_true", help="wait for the key to exist")
    s.add_argument("-w", "--watch", action="store_true", help="print each new value")
    s.add_argument("-u", "--uniq", action="store_true", help="only changed values")
    s.add_argument("-A", "--append", action="store_true", help="only appended data")
    s.add_argument("-f", "--full", action="store_true", help="monitor parent changes too")
    s.add_argument("-c", "--count", type=int, default=None, help="stop after COUNT values")
    s.add_argument("keys", nargs="+", metavar="key")

    w = sub.add_parser("watch", help="print a key's value now and after each change")
    _add_ns(w)
    w.add_argument("-c", "--count", type=int, default=None)
    w.add_argument("-W", "--waitcreate", action="store_true")
    w.add_argument("keys", nargs=1, metavar="key")

    s = sub.add_parser("put", help="store values")
    _add_ns(s)
    s.add_argument("-O", "--treeobj-root", action="store_true", help="print the new root")
    s.add_argument("-s", "--sequence", action="store_true", help="print the new root sequence")
    s.add_argument("-r", "--raw", action="store_true", help="value is raw; '-' reads stdin")
    s.add_argument("-t", "--treeobj", action="store_true", help="value is an RFC 11 object")
    s.add_argument("-n", "--no-merge", action="store_true")
    s.add_argument("-A", "--append", action="store_true", help="append instead of overwrite")
    s.add_argument("pairs", nargs="+", metavar="key=value")

    s = sub.add_parser("ls", help="list a directory")
    _add_ns(s)
    s.add_argument("-R", "--recursive", action="store_true")
    s.add_argument("-d", "--directory", action="store_true")
    s.add_argument("-F", "--classify", action="store_true")
    s.add_argument("-w", "--width", type=int, default=None)
    s.add_argument("-1", "--one", action="store_true", dest="one")
    s.add_argument("keys", nargs="*", metavar="key")

    s = sub.add_parser("dir", help="print keys and values of a directory")
    _add_ns(s)
    s.add_argument("-R", "--recursive", action="store_true")
    s.add_argument("-d", "--directory", action="store_true", help="no values")
    s.add_argument("-w", "--width", type=int, default=None)
    s.add_argument("-a", "--at", default=None, metavar="TREEOBJ")
    s.add_argument("key", nargs="?", default=".")

    for name, help_ in (("unlink", "remove keys"), ("mkdir", "create directories")):
        s = sub.add_parser(name, help=help_)
        _add_ns(s)
        s.add_argument("-O", "--treeobj-root", action="store_true")
        s.add_argument("-s", "--sequence", action="store_true")
        if name == "unlink":
            s.add_argument("-R", "--recursive", action="store_true")
            s.add_argument("-f", "--force", action="store_true")
        s.add_argument("keys", nargs="+", metavar="key")

    s = sub.add_parser("link", help="make linkname refer to target")
    _add_ns(s)
    s.add_argument("-T", "--target-namespace", default=None)
    s.add_argument("-O", "--treeobj-root", action="store_true")
    s.add_argument("-s", "--sequence", action="store_true")
    s.add_argument("target")
    s.add_argument("linkname")

    s = sub.add_parser("readlink", help="print the target of links")
    _add_ns(s)
    s.add_argument("-a", "--at", default=None)
    g = s.add_mutually_exclusive_group()
    g.add_argument("-o", "--namespace-only", action="store_true")
    g.add_argument("-k", "--key-only", action="store_true")
    s.add_argument("keys", nargs="+", metavar="key")

    s = sub.add_parser("getroot", help="print the current root")
    _add_ns(s)
    g = s.add_mutually_exclusive_group()
    g.add_argument("-s", "--sequence", action="store_true")
    g.add_argument("-o", "--owner", action="store_true")
    g.add_argument("-b", "--blobref", action="store_true")

    s = sub.add_parser("version", help="print the root sequence number")
    _add_ns(s)
    s = sub.add_parser("wait", help="wait for a root sequence number")
    _add_ns(s)
    s.add_argument("version", type=int)

    ns = sub.add_parser("namespace", help="create, remove or list namespaces")
    nsub = ns.add_subparsers(dest="nsop", required=True)
    c = nsub.add_parser("create")
    c.add_argument("-o", "--owner", type=int, default=None)
    c.add_argument("-r", "--rootref", default=None)
    c.add_argument("names", nargs="+", metavar="name")
    r = nsub.add_parser("remove")
    r.add_argument("names", nargs="+", metavar="name")
    nsub.add_parser("list")

    ev = sub.add_parser("eventlog", help="RFC 18 eventlogs in the KVS")
    esub = ev.add_subparsers(dest="evop", required=True)
    g = esub.add_parser("get")
    _add_ns(g)
    g.add_argument("-W", "--waitcreate", action="store_true")
    g.add_argument("-w", "--watch", action="store_true")
    g.add_argument("-c", "--count", type=int, default=None)
    g.add_argument("-u", "--unformatted", action="store_true")
    g.add_argument("-H", "--human", action="store_true")
    g.add_argument("key")
    a = esub.add_parser("append")
    _add_ns(a)
    a.add_argument("-t", "--timestamp", type=float, default=None)
    a.add_argument("key")
    a.add_argument("name")
    a.add_argument("context", nargs="*")
    we = esub.add_parser("wait-event")
    _add_ns(we)
    we.add_argument("-t", "--timeout", type=float, default=None)
    we.add_argument("-u", "--unformatted", action="store_true")
    we.add_argument("-W", "--waitcreate", action="store_true")
    we.add_argument("-q", "--quiet", action="store_true")
    we.add_argument("-v", "--verbose", action="store_true")
    we.add_argument("key")
    we.add_argument("event")
    return p


@command
def cmd_kvs(name, argv, prog):
    args = build_parser(prog).parse_args(argv)
    fn = globals()["do_" + args.sub]
    with handle() as h:
        return fn(h, args)


def _print_value(key: str, data: bytes, args) -> None:
    if args.label if hasattr(args, "label") else False:
        sys.stdout.write(f"{key}=")
    if getattr(args, "raw", False):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    text = data.decode(errors="replace")
    if text or args.label:
        print(text, flush=True)


def _decode(val: dict) -> bytes:
    return base64.b64decode(val["data"]) if val.get("data") else b""


def do_get(h, args):
    flags = 0
    if args.watch or args.append:
        flags |= K.FLUX_KVS_WATCH if not args.append else K.FLUX_KVS_WATCH_APPEND
        if args.uniq:
            flags |= K.FLUX_KVS_WATCH_UNIQ
        if args.full:
            flags |= K.FLUX_KVS_WATCH_FULL
    if args.waitcreate:
        flags |= K.FLUX_KVS_WAITCREATE
    if args.treeobj:
        flags |= K.FLUX_KVS_TREEOBJ
    if flags & ~K.FLUX_KVS_TREEOBJ:
        if len(args.keys) != 1:
            raise CommandError("--watch and --waitcreate take a single key")
        seen = 0
        for val in K.watch(h, args.keys[0], args.namespace, flags):
            if args.treeobj:
                print(json.dumps(val), flush=True)
            else:
                _print_value(args.keys[0], _decode(val), args)
            seen += 1
            if args.count is not None and seen >= args.count:
                break
        return 0
    for key in args.keys:
        val = K.lookup(h, key, args.namespace, flags, _rootref(args.at))
        if args.treeobj:
            print(json.dumps(val, separators=(",", ":")))
        else:
            _print_value(key, _decode(val), args)


def do_watch(h, args):
    args.raw = args.label = args.treeobj = args.uniq = args.full = args.append = False
    args.watch = True
    args.at = None
    return do_get(h, args)


def _rootref(at: str | None) -> str | None:
    if at is None:
        return None
    try:
        obj = json.loads(at)
        return obj["data"][0] if obj.get("type") == "dirref" else None
    except (ValueError, KeyError, TypeError, IndexError):
        raise CommandError(f"--at {at!r}: expected an RFC 11 dirref object") from None


def _commit_report(resp: dict, args) -> None:
    if getattr(args, "treeobj_root", False) and resp:
        print(json.dumps({"data": [resp["rootref"]], "type": "dirref", "ver": 1},
                         separators=(",", ":")))
    if getattr(args, "sequence", False) and resp:
        print(resp["rootseq"])


def do_put(h, args):
    txn = K.KVSTxn(h, namespace=args.namespace)
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"input not in key=value format: {pair}")
        if not key:
            raise CommandError(f"{pair}: key is empty")
        if (args.raw or args.treeobj) and value == "-":
            data = sys.stdin.buffer.read()
        else:
            data = value.encode()
        if args.treeobj:
            try:
                txn.put_treeobj(key, json.loads(data))
            except ValueError as exc:
                raise CommandError(f"{key}: value is not an RFC 11 object: {exc}") from None
        elif args.append:
            txn.append(key, data)
        else:
            txn.put_raw(key, data)
    _commit_report(txn.commit(), args)


def do_mkdir(h, args):
    txn = K.KVSTxn(h, namespace=args.namespace)
    for key in args.keys:
        txn.put_mkdir(key)
    _commit_report(txn.commit(), args)


def do_unlink(h, args):
    txn = K.KVSTxn(h, namespace=args.namespace)
    for key in args.keys:
        try:
            obj = K.lookup(h, key, args.namespace, K.FLUX_KVS_TREEOBJ)
        except FluxError as exc:
            if exc.errno == errno.ENOENT and args.force:
                continue
            raise
        if obj["type"] in ("dir", "dirref") and not args.recursive:
            raise CommandError(f"cannot unlink directory {key} without -R")
        txn.put_unlink(key)
    _commit_report(txn.commit(), args)


def do_link(h, args):
    txn = K.KVSTxn(h, namespace=args.namespace)
    txn.put_symlink(args.linkname, args.target, args.target_namespace)
    _commit_report(txn.commit(), args)


def do_readlink(h, args):
    for key in args.keys:
        obj = K.lookup(h, key, args.namespace, K.FLUX_KVS_READLINK, _rootref(args.at))
        ns, target = obj["data"].get("namespace"), obj["data"]["target"]
        if args.namespace_only:
            print(ns or "")
        elif args.key_only or not ns:
            print(target)
        else:
            print(f"{ns}::{target}")


def _width(args) -> int:
    if args.width is not None:
        return args.width
    if not sys.stdout.isatty():
        return 80
    return shutil.get_terminal_size((80, 24)).columns


def _classify(name: str, obj: dict) -> str:
    kind = obj["type"]
    return name + ("." if kind in ("dir", "dirref") else "@" if kind == "symlink" else "")


def _columns(names: list[str], width: int, one: bool) -> list[str]:
    if one or not names:
        return names
    colw = max(map(len, names)) + 2
    ncols = max(1, width // colw)
    nrows = (len(names) + ncols - 1) // ncols
    lines = []
    for r in range(nrows):
        row = [names[c * nrows + r] for c in range(ncols) if c * nrows + r < len(names)]
        lines.append("".join(n.ljust(colw) for n in row[:-1]) + row[-1])
    return lines


def do_ls(h, args):
    keys = args.keys or ["."]
    multi = len(keys) > 1 or args.recursive
    for i, key in enumerate(keys):
        obj = K.lookup(h, key, args.namespace, K.FLUX_KVS_TREEOBJ)
        if args.directory or obj["type"] not in ("dir", "dirref"):
            print(_classify(key, obj) if args.classify else key)
            continue
        _ls_dir(h, key, args, multi, first=(i == 0))


def _ls_dir(h, key, args, header, first):
    entries = K.listdir(h, key, args.namespace)
    names = sorted(entries)
    shown = [_classify(n, entries[n]) if args.classify else n for n in names]
    if header:
        if not first:
            print()
        print(f"{key}:")
    for line in _columns(shown, _width(args), args.one or not sys.stdout.isatty()):
        print(line)
    if args.recursive:
        for n in names:
            if entries[n]["type"] in ("dir", "dirref"):
                _ls_dir(h, n if key == "." else f"{key}.{n}", args, True, False)


def do_dir(h, args):
    width = args.width if args.width is not None else (
        shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else 0)
    rootref = _rootref(args.at)

    def show(key: str) -> None:
        entries = K.lookup(h, key, args.namespace, K.FLUX_KVS_READDIR, rootref)["data"]
        for name in sorted(entries):
            full = name if key == "." else f"{key}.{name}"
            kind = entries[name]["type"]
            if kind in ("dir", "dirref"):
                if args.recursive:
                    show(full)
                else:
                    print(f"{full}.")
                continue
            if args.directory:
                print(full)
                continue
            if kind == "symlink":
                data = entries[name]["data"]
                text = (f"{data['namespace']}::" if data.get("namespace") else "") + data["target"]
                line = f"{full} -> {text}"
            else:
                val = K.lookup(h, full, args.namespace, 0, rootref)
                line = f"{full} = {_decode(val).decode(errors='replace')}"
            if width and len(line) > width:
                line = line[:max(0, width - 3)] + "..."
            print(line)

    show(args.key)


def do_getroot(h, args):
    root = K.getroot(h, args.namespace)
    if args.sequence:
        print(root["rootseq"])
    elif args.owner:
        print(root["owner"])
    elif args.blobref:
        print(root["rootref"])
    else:
        print(json.dumps({"data": [root["rootref"]], "type": "dirref", "ver": 1},
                         separators=(",", ":")))


def do_version(h, args):
    print(K.getroot(h, args.namespace)["rootseq"])


def do_wait(h, args):
    payload = {"rootseq": args.version}
    if args.namespace:
        payload["namespace"] = args.namespace
    h.rpc("kvs.wait-version", payload, nodeid=0).get()


def do_namespace(h, args):
    if args.nsop == "create":
        for name in args.names:
            K.namespace_create(h, name, args.owner)
    elif args.nsop == "remove":
        for name in args.names:
            K.namespace_remove(h, name)
    else:
        nss = h.rpc("kvs.namespace-list", {}, nodeid=0).get()["namespaces"]
        print(f"{'NAMESPACE':<36} {'OWNER':<10} {'FLAGS':<8}")
        for ns in nss:
            print(f"{ns['namespace']:<36} {ns['owner']:<10} 0x{ns.get('flags', 0):<8X}")


def _eventlog_lines(h, key, ns, watch: bool, waitcreate: bool):
    """Yield complete eventlog lines, now and (with watch) as they are appended."""
    from ..runtime.util import eventlog as E
    flags = (K.FLUX_KVS_WATCH_APPEND if watch else 0) | (K.FLUX_KVS_WAITCREATE if waitcreate else 0)
    buf = b""
    source = K.watch(h, key, ns, flags) if flags else [K.lookup(h, key, ns)]
    for val in source:
        buf += _decode(val)
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line:
                yield E.decode_entry(line.decode())


def _fmt_event(entry, unformatted: bool, human: bool = False, t0=None) -> str:
    from ..runtime.util import eventlog as E
    if unformatted:
        return json.dumps(entry, separators=(",", ":"))
    return E.format_event(entry, time_format="human" if human else "raw", t0=t0)


def do_eventlog(h, args):
    if args.evop == "append":
        from ..runtime.util import eventlog as E
        context = None
        if args.context:
            text = " ".join(args.context)
            try:
                context = json.loads(text)
            except ValueError:
                raise CommandError(f"context {text!r} is not a JSON object") from None
            if not isinstance(context, dict):
                raise CommandError(f"context {text!r} is not a JSON object")
        line = E.encode_event(args.name, context, args.timestamp)
        txn = K.KVSTxn(h, namespace=args.namespace)
        txn.append(args.key, line)
        txn.commit()
        return 0
    if args.evop == "get":
        n = 0
        for entry in _eventlog_lines(h, args.key, args.namespace, args.watch, args.waitcreate):
            print(_fmt_event(entry, args.unformatted), flush=True)
            n += 1
            if args.count is not None and n >= args.count:
                break
        return 0
    # wait-event
    deadline = None if args.timeout is None else time.time() + args.timeout
    if deadline is not None:
        import threading
        timer = threading.Timer(args.timeout, lambda: os._exit(_timeout(args)))
        timer.daemon = True
        timer.start()
    for entry in _eventlog_lines(h, args.key, args.namespace, True, args.waitcreate):
        if entry["name"] == args.event:
            if not args.quiet:
                print(_fmt_event(entry, args.unformatted), flush=True)
            return 0
        if args.verbose:
            print(_fmt_event(entry, args.unformatted), flush=True)
    return 1


def _timeout(args) -> int:
    print(f"flux-kvs: wait-event timeout on event '{args.event}'", file=sys.stderr)
    sys.stderr.flush()
    return 1
