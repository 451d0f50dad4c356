"""``flux job`` utilities (flux-job(1)), ``flux cancel`` and ``flux watch``.

``flux job`` subcommands: attach, submit, info, eventlog, wait-event, status,
last, kill, killall, cancel, cancelall, raise, urgency, wait, id.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import threading

from ..runtime.message import FluxError
from .common import CommandError, command, handle, parser

URGENCY_NAMES = {"hold": 0, "default": 16, "expedite": 31}
ACTIVE_STATES = ["DEPEND", "PRIORITY", "SCHED", "RUN"]
#: ``-p`` names of flux job eventlog / wait-event -> eventlog_entries() path
EVENTLOG_PATHS = {"eventlog": "eventlog", "exec": "exec", "guest.exec.eventlog": "exec",
                  "output": "output", "guest.output": "output", "input": "input",
                  "guest.input": "input"}


def run(name: str, argv: list[str], prog: str) -> int:
    if name == "cancel":
        return cmd_cancel(name, argv, prog)
    if name == "watch":
        return cmd_watch(name, argv, prog)
    if argv and argv[0] == "attach":
        from .attach import cmd_attach
        return cmd_attach("job", argv[1:], prog)
    return cmd_job(name, argv, prog)


def _s(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def jobid(arg: str):
    """Parse any JobID form, or fail as flux does (``ID: malformed input``)."""
    from ..job import JobID
    try:
        return JobID(arg)
    except (ValueError, TypeError):
        raise CommandError(f"{arg}: malformed input") from None


def signum(arg: str) -> int:
    """``SIGKILL``, ``KILL`` or ``9``."""
    if arg.isdigit():
        num = int(arg)
    else:
        name = arg.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        num = getattr(signal.Signals, name, None)
        if num is None:
            raise CommandError(f"kill: Invalid signal {arg}")
    if not 0 < int(num) < 65:
        raise CommandError(f"kill: Invalid signal {arg}")
    return int(num)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = parser(prog, "job", "Job housekeeping utilities.")
    sub = p.add_subparsers(dest="sub", required=True, metavar="COMMAND")
    sub.add_parser("attach", help="attach to a job's I/O", add_help=False)

    s = sub.add_parser("submit", help="submit a jobspec (JSON or YAML) and print its id")
    s.add_argument("-u", "--urgency", type=int, default=16)
    s.add_argument("-f", "--flags", default="", help="comma-separated: debug, waitable, novalidate")
    s.add_argument("file", nargs="?", default="-", metavar="FILE|-")

    s = sub.add_parser("info", help="print a job's KVS data (jobspec, R, eventlog, ...)")
    s.add_argument("id")
    s.add_argument("keys", nargs="+", metavar="key")

    for cmd in ("eventlog", "wait-event"):
        s = sub.add_parser(cmd, help="print a job eventlog" if cmd == "eventlog"
                           else "wait for an event of a job eventlog")
        s.add_argument("-f", "--format", default="text", choices=["text", "json"])
        s.add_argument("-T", "--time-format", default="raw",
                       choices=["raw", "iso", "offset", "human", "reltime"])
        s.add_argument("-p", "--path", default="eventlog", help="eventlog|exec|output|input")
        s.add_argument("-L", "--color", nargs="?", const="always", default="never",
                       choices=["never", "always", "auto"])
        if cmd == "wait-event":
            s.add_argument("-t", "--timeout", type=float, default=None)
            s.add_argument("-m", "--match-context", action="append", default=[],
                           metavar="KEY=VAL")
            s.add_argument("-q", "--quiet", action="store_true")
            s.add_argument("-v", "--verbose", action="store_true")
            s.add_argument("-W", "--waitcreate", action="store_true")
        s.add_argument("id")
        if cmd == "wait-event":
            s.add_argument("event")

    s = sub.add_parser("status", help="wait for jobs; exit with the highest exit code")
    s.add_argument("-v", "--verbose", action="count", default=0)
    s.add_argument("-e", "--exception-exit-code", type=int, default=1)
    s.add_argument("ids", nargs="+", metavar="id")

    s = sub.add_parser("last", help="print the most recently submitted job ids")
    s.add_argument("slice", nargs="?", default=None, metavar="N|SLICE")

    s = sub.add_parser("purge", help="purge inactive jobs (or the given ones) from the instance")
    s.add_argument("--age-limit", default=None, metavar="FSD",
                   help="purge jobs that became inactive beyond age-limit")
    s.add_argument("--num-limit", default=None, metavar="COUNT",
                   help="purge oldest inactive jobs until COUNT are left")
    s.add_argument("-f", "--force", action="store_true", help="perform the irreversible purge")
    s.add_argument("--batch", default="50", metavar="COUNT",
                   help="limit number of jobs per request (default 50)")
    s.add_argument("ids", nargs="*", metavar="id")

    for cmd in ("killall", "cancelall"):
        s = sub.add_parser(cmd, help=f"{cmd[:-3]} all of your active jobs")
        if cmd == "killall":
            s.add_argument("-s", "--signal", default="SIGTERM")
        else:
            s.add_argument("-S", "--states", default=None)
        s.add_argument("-f", "--force", action="store_true", help="confirm")
        s.add_argument("-u", "--user", default=None)
        if cmd == "cancelall":
            s.add_argument("message", nargs="*")

    s = sub.add_parser("kill", help="send a signal to running jobs")
    s.add_argument("-s", "--signal", default="SIGTERM")
    s.add_argument("ids", nargs="+", metavar="id")

    s = sub.add_parser("cancel", help="cancel jobs")
    s.add_argument("-m", "--message", default=None)
    s.add_argument("ids", nargs="+", metavar="id")

    s = sub.add_parser("raise", help="raise an exception on a job")
    s.add_argument("-s", "--severity", type=int, default=0)
    s.add_argument("-t", "--type", default="cancel")
    s.add_argument("id")
    s.add_argument("note", nargs="*")

    s = sub.add_parser("urgency", help="set a job's urgency (0-31, hold, expedite, default)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.add_argument("id")
    s.add_argument("urgency")

    s = sub.add_parser("wait", help="wait for waitable jobs")
    s.add_argument("-a", "--all", action="store_true")
    s.add_argument("-v", "--verbose", action="store_true")
    s.add_argument("id", nargs="?")

    s = sub.add_parser("id", help="convert job ids between encodings")
    s.add_argument("-t", "--to", default="dec",
                   choices=["dec", "hex", "dothex", "kvs", "words", "f58", "f58plain", "emoji"])
    s.add_argument("ids", nargs="*", metavar="id")
    return p


@command
def cmd_job(name, argv, prog):
    args = build_parser(prog).parse_args(argv)
    _PROG[0] = f"{prog}-job"
    if args.sub == "id":
        return do_id(None, args)
    fn = globals()["do_" + args.sub.replace("-", "_")]
    with handle() as h:
        return fn(h, args)


# -- submit ---------------------------------------------------------------------------------
SUBMIT_FLAGS = ("debug", "waitable", "novalidate")


def do_submit(h, args):
    """Submit a jobspec as written (canonical or V1): no defaults are added, as flux."""
    from ..job import submit
    from ..runtime.job.jobspec_validate import load_yaml
    flags = [f for f in args.flags.split(",") if f]
    for f in flags:
        if f not in SUBMIT_FLAGS:
            raise CommandError(f"unknown flag '{f}' (use {', '.join(SUBMIT_FLAGS)})")
    name = "stdin" if args.file == "-" else args.file
    try:
        if args.file == "-":
            text = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                text = f.read()
    except OSError as exc:
        raise CommandError(f"{name}: {exc.strerror}") from None
    try:
        jobspec = load_yaml(text, name=name)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not isinstance(jobspec, dict):
        raise CommandError(f"{name}: a jobspec must be a JSON or YAML mapping")
    print(submit(h, jobspec, urgency=args.urgency, **{f: True for f in flags}).f58)


# -- id, last -----------------------------------------------------------------------------
def do_id(h, args):
    ids = args.ids or [line.strip() for line in sys.stdin if line.strip()]
    to = "f58" if args.to == "emoji" else args.to
    for arg in ids:
        print(jobid(arg).encode(to))


def do_last(h, args):
    spec = args.slice or "1"
    if spec.startswith("[") and spec.endswith("]"):
        spec = spec[1:-1]
    try:
        if ":" in spec:
            parts = [int(x) if x else None for x in spec.split(":")]
            sl = slice(*parts)
            want = 1000
        else:
            want = int(spec)
            sl = slice(0, want)
    except ValueError:
        raise CommandError(f"invalid slice: {args.slice}") from None
    ids = h.rpc("job-manager.history", {"max": want}, nodeid=0).get()["jobs"][sl]
    if not ids:
        raise CommandError("job history is empty")
    from ..job import JobID
    for i in ids:
        print(JobID(i).f58)


def _count(text: str | None, what: str) -> int:
    if text is None:
        return -1
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"--{what}: {text!r} is not an integer") from None


def do_purge(h, args):
    """As flux-core's ``flux job purge``: say what would go, or with --force purge it."""
    total = 0  # given ids, the limits are not used (as flux-core)
    if args.ids:
        ids = [jobid(a) for a in args.ids]
        futures = [h.rpc("job-manager.purge-id", {"id": int(i), "force": args.force}, nodeid=0)
                   for i in ids]
        for f in futures:
            try:
                total += f.get()["count"]
            except FluxError as exc:
                raise CommandError(f"purge: {exc.errstr}") from None
    else:
        age = -1.0
        if args.age_limit is not None:
            from ..runtime.util.fsd import parse_fsd
            try:
                age = parse_fsd(args.age_limit)
            except ValueError as exc:
                raise CommandError(f"--age-limit: {exc}") from None
        payload = {"age_limit": age, "num_limit": _count(args.num_limit, "num-limit"),
                   "batch": _count(args.batch, "batch"), "force": args.force}
        while True:
            try:
                count = h.rpc("job-manager.purge", payload, nodeid=0).get()["count"]
            except FluxError as exc:
                raise CommandError(f"purge: {exc.errstr}") from None
            total += count
            if not args.force or count != payload["batch"]:
                break
    left = h.rpc("job-manager.stats-get", {}, nodeid=0).get()["inactive_jobs"]
    if args.force:
        print(f"purged {total} inactive jobs, {left} remaining")
    else:
        print(f"use --force to purge {total} of {left} inactive jobs")
    return 0


# -- KVS data and eventlogs -----------------------------------------------------------------
def do_info(h, args):
    from .. import kvs as K
    from ..runtime.message import FluxError
    jid = jobid(args.id)
    for key in args.keys:
        try:
            data = K.get_raw(h, f"{jid.kvs}.{key}")
        except FluxError as exc:
            if exc.errno != errno.ENOENT or not key.startswith("guest."):
                raise CommandError(f"job {jid.f58} id or key not found") from None
            try:  # the guest namespace, while the job runs
                data = K.get_raw(h, key[len("guest."):], namespace=f"job-{int(jid)}")
            except FluxError:
                raise CommandError(f"job {jid.f58} id or key not found") from None
        text = data.decode(errors="replace")
        try:
            obj = json.loads(text)
            if isinstance(obj, (dict, list)):
                text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            pass
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _formatter(args):
    from ..runtime.util.eventlog import EventlogFormatter
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    return EventlogFormatter(args.format, args.time_format, color=color)


def _path(args) -> str:
    try:
        return EVENTLOG_PATHS[args.path]
    except KeyError:
        raise CommandError(f"invalid eventlog path {args.path!r}: use eventlog, exec, "
                           "output or input") from None


def do_eventlog(h, args):
    from ..job import eventlog_entries
    from ..runtime.message import FluxError
    jid = jobid(args.id)
    evf = _formatter(args)
    try:
        for ev in eventlog_entries(h, jid, _path(args), watch=False):
            print(evf.format(ev))
    except FluxError as exc:
        if exc.errno == errno.ENOENT:
            raise CommandError(f"job {jid.f58} not found") from None
        raise


def _matches(ev, pairs: list[str]) -> bool:
    for pair in pairs:
        key, _, want = pair.partition("=")
        if key not in ev.context:
            return False
        have = ev.context[key]
        if str(have) != want and json.dumps(have) != want:
            return False
    return True


class _Alarm:
    """Raise TimeoutError in this thread after ``seconds`` (blocking reads included)."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds

    def __enter__(self):
        self.timer = None
        if self.seconds is not None and threading.current_thread() is not threading.main_thread():
            # a worker thread (the notebook's %flux) gets no signals: a timer raises it there
            from .common import raise_in_thread
            self.timer = threading.Timer(max(self.seconds, 0.001), raise_in_thread,
                                         (threading.get_ident(), TimeoutError))
            self.timer.daemon = True
            self.timer.start()
        elif self.seconds is not None:
            def fire(signo, frame):
                raise TimeoutError()
            self.old = signal.signal(signal.SIGALRM, fire)
            signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 0.001))
        return self

    def __exit__(self, *exc):
        if self.timer is not None:
            self.timer.cancel()
        elif self.seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)


def do_wait_event(h, args):
    from ..job import eventlog_entries
    from ..runtime.message import FluxError
    jid = jobid(args.id)
    evf = _formatter(args)
    try:
        with _Alarm(args.timeout):
            for ev in eventlog_entries(h, jid, _path(args), watch=True):
                hit = ev.name == args.event and _matches(ev, args.match_context)
                if args.verbose and not hit:
                    print(evf.format(ev), flush=True)
                if hit:
                    if not args.quiet:
                        print(evf.format(ev), flush=True)
                    return 0
    except TimeoutError:
        raise CommandError(f"wait-event timeout on event '{args.event}'") from None
    except FluxError as exc:
        if exc.errno == errno.ENOENT:
            raise CommandError(f"job {jid.f58} not found") from None
        raise
    raise CommandError(f"eventlog ended without event '{args.event}'")


# -- status, wait ---------------------------------------------------------------------------
def _result(h, jid) -> dict:
    from ..job import result
    from ..runtime.message import FluxError
    try:
        return result(h, jid)
    except FluxError as exc:
        if exc.errno == errno.ENOENT:
            raise CommandError(f"{jid.orig}: No such job") from None
        raise


def exit_code(info: dict, exception_code: int = 1) -> int:
    """flux job status's exit code: exit status, 128+signal, or the exception code."""
    ws = info.get("waitstatus")
    code = 0
    if isinstance(ws, int):
        code = 128 + (ws & 0x7F) if ws & 0x7F else (ws >> 8) & 0xFF
    exc = info.get("exception") or {}
    if exc.get("occurred") and exc.get("severity") == 0:
        code = max(code, exception_code)
    return code


def do_status(h, args):
    worst = 0
    for arg in args.ids:
        jid = jobid(arg)
        info = _result(h, jid)
        code = exit_code(info, args.exception_exit_code)
        worst = max(worst, code)
        if args.verbose:
            ws = info.get("waitstatus")
            exc = info.get("exception") or {}
            if isinstance(ws, int) and ws & 0x7F:
                _log(f"{arg}: job shell died by signal {ws & 0x7F}")
            elif args.verbose > 1 or code != 0:
                if exc.get("occurred") and exc.get("severity") == 0:
                    _log(f"{arg}: exception type={exc.get('type')}")
                else:
                    _log(f"{arg}: exited with exit code {code}")
    return worst


_PROG = ["flux-job"]


def _log(msg: str) -> None:
    print(f"{_PROG[0]}: {msg}", file=sys.stderr)


def do_wait(h, args):
    from ..job import FLUX_JOBID_ANY, wait
    from ..runtime.message import FluxError
    if args.all:
        if args.id:
            raise CommandError("jobid not supported with --all")
        rc = 0
        while True:
            try:
                res = wait(h, FLUX_JOBID_ANY)
            except FluxError as exc:
                if exc.errno == errno.ECHILD:
                    return rc
                raise
            if not res.success:
                _log(f"{res.jobid.f58}: {res.errstr}")
                rc = 1
            elif args.verbose:
                _log(f"{res.jobid.f58}: job completed")
    target = jobid(args.id) if args.id else FLUX_JOBID_ANY
    res = wait(h, target)
    if args.id is None:
        print(res.jobid.f58)
    if not res.success:
        raise CommandError(res.errstr)
    return 0


# -- signals, exceptions, urgency -----------------------------------------------------------
def _each(h, ids, topic: str, payload) -> int:
    from ..runtime.message import FluxError
    rc = 0
    for arg in ids:
        jid = jobid(arg)
        try:
            h.rpc(topic, dict(payload, id=int(jid)), nodeid=0).get()
        except FluxError as exc:
            _log(f"{arg}: {exc}")
            rc = 1
    return rc


def do_kill(h, args):
    return _each(h, args.ids, "job-manager.kill", {"signum": signum(args.signal)})


def do_cancel(h, args):
    return _each(h, args.ids, "job-manager.raise",
                 {"type": "cancel", "severity": 0, "note": args.message or ""})


def do_raise(h, args):
    if not 0 <= args.severity <= 7:
        raise CommandError("--severity must be 0-7")
    return _each(h, [args.id], "job-manager.raise",
                 {"type": args.type, "severity": args.severity, "note": " ".join(args.note)})


def do_urgency(h, args):
    from ..job import set_urgency
    jid = jobid(args.id)
    val = args.urgency.lower()
    if val in URGENCY_NAMES:
        urgency = URGENCY_NAMES[val]
    else:
        try:
            urgency = int(val)
        except ValueError:
            raise CommandError(f"urgency {args.urgency!r}: use 0-31, hold, expedite "
                               "or default") from None
    old = set_urgency(h, jid, urgency)
    if args.verbose:
        _log(f"{args.id}: urgency changed from {old} to {urgency}")


def _count_running(h) -> int:
    from os import getuid
    return len(h.rpc("job-list.list", {"max_entries": 0, "attrs": ["state"], "userid": getuid(),
                                       "states": 16, "results": 0, "since": 0},
                     nodeid=0).get()["jobs"])


def do_killall(h, args):
    try:
        num = signum(args.signal)
    except CommandError as exc:   # flux-job: killall: Invalid signal X
        raise CommandError(str(exc).replace("kill:", "killall:", 1)) from None
    if not args.force:
        count = _count_running(h)
        _log(f"Command matched {count} jobs (-f to confirm)" if count
             else "Command matched 0 jobs")
        return 0
    count = h.rpc("job-manager.killall", {"signum": num}, nodeid=0).get().get("count", 0)
    # as flux-core: strsignal's name of the signal, "%d jobs" whatever the count
    _log(f"{signal.strsignal(num) or f'Signal {num}'} {count} jobs (0 errors)" if count
         else "Command matched 0 jobs")


def _states(spec: str | None) -> list[str]:
    groups = {"pending": ["DEPEND", "PRIORITY", "SCHED"], "running": ["RUN"],
              "active": ACTIVE_STATES, "depend": ["DEPEND"], "priority": ["PRIORITY"],
              "sched": ["SCHED"], "run": ["RUN"]}
    if not spec:
        return list(ACTIVE_STATES)
    out: list[str] = []
    for name in spec.split(","):
        if name.lower() not in groups:
            raise CommandError(f"Invalid state {name} specified")
        out += [s for s in groups[name.lower()] if s not in out]
    return out


def cancel_all(h, states: list[str], dry_run: bool, reason: str = "") -> int:
    return h.rpc("job-manager.cancel-all", {"states": states, "dry_run": dry_run,
                                            "reason": reason}, nodeid=0).get()["count"]


def do_cancelall(h, args):
    count = cancel_all(h, _states(args.states), not args.force, " ".join(args.message))
    if count and not args.force:
        _log(f"Command matched {count} jobs (-f to confirm)")
    elif count:
        _log(f"Canceled {_s(count, 'job')} (0 errors)")
    else:
        _log("Command matched 0 jobs")


# -- flux cancel --------------------------------------------------------------------------------
@command
def cmd_cancel(name, argv, prog):
    p = parser(prog, "cancel", "Cancel pending or running jobs with an optional exception note.")
    p.add_argument("--all", action="store_true", help="target all your active jobs")
    p.add_argument("-n", "--dry-run", "--dry", action="store_true", help="cancel nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="no message when no job matches")
    p.add_argument("-u", "--user", default=None, help="target user or 'all'")
    p.add_argument("-S", "--states", action="append", default=None,
                   help="job states to target (default: active)")
    p.add_argument("-m", "--message", default=None, metavar="NOTE", help="exception note")
    p.add_argument("ids", nargs="*", metavar="JOBID")
    args = p.parse_args(argv)
    if args.user or args.states:
        args.all = True
    if args.ids and args.all:
        raise CommandError("Do not specify a list of jobids with --all,--user,--states options")
    log = lambda msg: print(f"{prog}-cancel: {msg}", file=sys.stderr)  # noqa: E731
    if args.all:
        with handle() as h:
            count = cancel_all(h, _states(",".join(args.states or [])), args.dry_run,
                               args.message or "")
        if count and args.dry_run:
            log(f"Would cancel {_s(count, 'job')}")
        elif count:
            log(f"Canceled {_s(count, 'job')} (0 errors)")
        elif not args.quiet:
            log("Matched 0 jobs")
        return 0
    if not args.ids:
        raise CommandError("No target jobs were provided")
    ids = [jobid(a) for a in args.ids]
    if args.dry_run:
        log(f"Would cancel {_s(len(ids), 'job')}")
        return 0
    _PROG[0] = f"{prog}-cancel"
    with handle() as h:
        return _each(h, args.ids, "job-manager.raise",
                     {"type": "cancel", "severity": 0, "note": args.message or ""})


# -- flux watch ---------------------------------------------------------------------------------
@command
def cmd_watch(name, argv, prog):
    from .jobs import filter_masks, parse_since
    p = parser(prog, "watch", "Watch jobs: copy their output until they are done.")
    p.add_argument("-a", "--active", action="store_true", help="all your active jobs")
    p.add_argument("-A", "--all", action="store_true", help="all your jobs, inactive too")
    p.add_argument("-c", "--count", type=int, default=0, metavar="N", help="at most N jobs")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="STATE|RESULT")
    p.add_argument("--since", default=None, metavar="WHEN")
    p.add_argument("--progress", action="store_true", help="show a progress bar (tty only)")
    p.add_argument("--jps", action="store_true", help="jobs/s instead of elapsed time")
    p.add_argument("-l", "--label-io", action="store_true", help="label output with task rank")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("ids", nargs="*", metavar="JOBID")
    args = p.parse_args(argv)
    log = lambda msg: print(f"{prog}-watch: {msg}", file=sys.stderr)  # noqa: E731
    names = {n for f in args.filter for n in f.split(",") if n}
    since = 0.0
    if args.since:
        if not names:
            args.all = True
        since = parse_since(args.since)
    if args.active:
        names.update(("pending", "running"))
    if args.all:
        names.update(("pending", "running", "inactive"))
    if not names and not args.ids:
        raise CommandError("At least one job selection option is required")
    with handle() as h:
        if args.ids:
            ids = [jobid(a) for a in args.ids]
        else:
            import os
            states, results = filter_masks(names)
            jobs = h.rpc("job-list.list", {"max_entries": args.count, "attrs": ["state", "result"],
                                           "userid": os.getuid(), "states": states,
                                           "results": results, "since": since},
                         nodeid=0).get()["jobs"]
            from ..job import JobID
            ids = [JobID(j["id"]) for j in jobs]
        if not ids:
            log("No matching jobs")
            return 0
        if args.verbose:
            log(f"Watching {_s(len(ids), 'job')}")
        worst = 0
        progress = args.progress and sys.stderr.isatty()
        for n, jid in enumerate(sorted(ids)):
            _copy_output(h, jid, args.label_io)
            info = _result(h, jid)
            worst = max(worst, exit_code(info))
            if args.verbose:
                log(f"{jid.f58}: {info.get('result', '').lower()}")
            if progress:
                print(f"\r{n + 1}/{len(ids)} jobs done", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    return worst


def _copy_output(h, jid, label: bool) -> None:
    """Copy a job's stdout/stderr (RFC 24 ``data`` events) to ours as it arrives."""
    from ..job import eventlog_entries, get_job
    info = get_job(h, jid)
    live = info is not None and info["state"] != "INACTIVE"
    for ev in eventlog_entries(h, jid, "output", watch=live):
        ctx = ev.context
        if ev.name != "data" or "data" not in ctx:
            continue
        stream = sys.stderr if ctx.get("stream") == "stderr" else sys.stdout
        data = ctx["data"]
        if label:
            data = "".join(f"{ctx.get('rank')}: {line}" for line in data.splitlines(True))
        stream.write(data)
        stream.flush()
