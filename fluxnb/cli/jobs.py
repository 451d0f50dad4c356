"""``flux jobs``: list jobs, with flux-jobs(1)'s options, columns and formats."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .common import CommandError, command, handle, parser

#: filter name -> (state bits, result bits), as flux-jobs(1) documents them
FILTERS = {
    "new": (1, 0), "depend": (2, 0), "priority": (4, 0), "sched": (8, 0), "run": (16, 0),
    "cleanup": (32, 0), "inactive": (64, 0),
    "pending": (2 | 4 | 8, 0), "running": (16 | 32, 0), "active": (1 | 2 | 4 | 8 | 16 | 32, 0),
    "completed": (64, 1), "failed": (64, 2), "canceled": (64, 4), "timeout": (64, 8),
}
USERID_ALL = 0xFFFFFFFF


def run(name: str, argv: list[str], prog: str) -> int:
    return cmd_jobs(name, argv, prog)


class _SetUpdate(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        getattr(namespace, self.dest).update(v for v in values.split(",") if v)
        namespace.filtered = True


class _Filter(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values if self.nargs != 0 else True)
        namespace.filtered = True


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = parser(prog, "jobs", "List jobs.")
    p.add_argument("-a", action=_Filter, nargs=0, default=False, help="list jobs in all states")
    p.add_argument("-A", action=_Filter, nargs=0, default=False, help="list jobs of all users")
    p.add_argument("-c", "--count", action=_Filter, type=int, metavar="N", default=1000,
                   help="limit output to N jobs (default 1000)")
    p.add_argument("-f", "--filter", action=_SetUpdate, metavar="STATE|RESULT", default=set(),
                   help="list jobs with these states or results (comma separated)")
    p.add_argument("--since", action=_Filter, metavar="WHEN", default=None,
                   help="include jobs inactive since WHEN (implies -a)")
    p.add_argument("-n", "--suppress-header", "--no-header", dest="no_header",
                   action="store_true", help="do not print the header line")
    p.add_argument("-u", "--user", action=_Filter, metavar="USERNAME|UID", default=None,
                   help="list jobs of this user ('all' for all users)")
    p.add_argument("--name", action=_Filter, metavar="JOB-NAME", help="only jobs of this name")
    p.add_argument("--queue", action=_Filter, metavar="QUEUE", help="only jobs in this queue")
    p.add_argument("-o", "--format", default=os.environ.get("FLUX_JOBS_FORMAT_DEFAULT", "default"),
                   metavar="FORMAT", help="format string or named format (default, long, "
                   "deps; 'help' lists them)")
    p.add_argument("--json", action="store_true", help="print the jobs as JSON")
    p.add_argument("--color", nargs="?", const="always", default="auto",
                   choices=["never", "always", "auto"], metavar="WHEN")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="list jobs of nested instances too, under their jobid path")
    p.add_argument("-L", "--level", type=int, default=None, metavar="N",
                   help="with -R, descend at most N levels")
    p.add_argument("--stats", action="store_true", help="print job statistics before the header")
    p.add_argument("--stats-only", action="store_true",
                   help="print job statistics only; exit 1 if no job is active")
    p.add_argument("jobids", metavar="JOBID", nargs="*", help="list only these jobs")
    p.set_defaults(filtered=False)
    return p


def filter_masks(names) -> tuple[int, int]:
    """State and result bitmasks of job-list for filter names (``pending,failed``)."""
    states = results = 0
    for name in names:
        try:
            s, r = FILTERS[name.lower()]
        except KeyError:
            raise CommandError(f"Invalid filter specified: {name}") from None
        states |= s
        results |= r
    return states, results


def parse_since(when: str) -> float:
    """A timestamp from ``-6h`` (an FSD ago), ``now``, epoch seconds or ISO 8601."""
    from ..runtime.util.fsd import parse_fsd
    when = when.strip()
    now = time.time()
    try:
        if when == "now":
            return now
        if when.startswith(("-", "+")):
            delta = parse_fsd(when[1:])
            return now - delta if when[0] == "-" else now + delta
        try:
            return float(when)
        except ValueError:
            from datetime import datetime
            return datetime.fromisoformat(when).timestamp()
    except ValueError:
        raise CommandError(f'Invalid datetime: "{when}"') from None


def parse_user(user: str | None) -> int:
    if user is None:
        return os.getuid()
    if user == "all":
        return USERID_ALL
    import pwd
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        try:
            return int(user)
        except ValueError:
            raise CommandError(f"Invalid user {user}") from None


def stats_line(h) -> tuple[str, int]:
    """flux's ``N running, N completed, N failed, N pending`` and the active count."""
    st = h.rpc("job-list.stats", {}, nodeid=0).get()
    counts = st.get("job_states", {})
    pending = sum(counts.get(k, 0) for k in ("depend", "priority", "sched"))
    running = counts.get("run", 0) + counts.get("cleanup", 0)
    # flux counts every unsuccessful job (canceled, timeout too) as failed here
    failed = st.get("failed", 0) + st.get("canceled", 0) + st.get("timeout", 0)
    active = pending + running + counts.get("new", 0)
    return (f"{running} running, {st.get('successful', 0)} completed, {failed} failed, "
            f"{pending} pending"), active


def fetch_jobs(h, args, prog: str) -> tuple[list[dict], list[str]]:
    """Job-list records selected by ``args``; and errors for unknown job ids."""
    from ..job import JobID
    from ..runtime.message import FluxError
    if args.jobids:
        jobs, errors = [], []
        for arg in args.jobids:
            try:
                jobid = JobID(arg)
            except ValueError:
                raise CommandError(f"invalid job id {arg!r}") from None
            try:
                jobs.append(h.rpc("job-list.list-id", {"id": int(jobid), "attrs": ["all"]},
                                  nodeid=0).get()["job"])
            except FluxError as exc:
                errors.append(f"{prog}-jobs: {arg}: {exc}")
        return jobs, errors
    since = 0.0
    if args.since:
        if not args.filter:
            args.a = True
        since = parse_since(args.since)
        if since > time.time():
            raise CommandError(f"--since={args.since} appears to be in the future")
    names = set(args.filter)
    if args.a or args.A:
        names.update(("pending", "running", "inactive"))
    if not names:
        names = {"pending", "running"}
    states, results = filter_masks(names)
    userid = USERID_ALL if args.A else parse_user(args.user)
    payload = {"max_entries": 0 if results else args.count, "attrs": ["all"], "userid": userid,
               "states": states, "results": 0, "since": since}
    if args.name:
        payload["name"] = args.name
    if args.queue:
        payload["queue"] = args.queue
    jobs = h.rpc("job-list.list", payload, nodeid=0).get()["jobs"]
    if results:
        # a result filter narrows inactive jobs only: "running,failed" keeps running jobs
        only = states & ~64
        jobs = [j for j in jobs if j["state"] & only or j.get("result", 0) & results]
        if args.count:
            jobs = jobs[:args.count]
    return jobs, []


def _print_formats() -> None:
    from .jobinfo_format import FORMAT_DESCRIPTIONS
    print("\nConfigured flux-jobs output formats:\n")
    for name, desc in FORMAT_DESCRIPTIONS.items():
        print(f"  {name:<12} {desc}")


@command
def cmd_jobs(name, argv, prog):
    args = build_parser(prog).parse_args(argv)
    from .jobinfo_format import JobInfo, JobInfoFormat, NAMED_FORMATS, resolve_format
    if args.jobids and args.filtered:
        print(f"{prog}-jobs: WARNING: Filtering options ignored with jobid list", file=sys.stderr)
    if args.format == "help":
        _print_formats()
        return 0
    if args.format.startswith("get-config="):
        fname = args.format.split("=", 1)[1]
        if fname not in NAMED_FORMATS:
            raise CommandError(f"--format: No such format {fname}")
        print(f"[formats.{fname}]")
        print(f'format = "{NAMED_FORMATS[fname]}"')
        return 0
    if args.json and (args.stats or args.stats_only):
        raise CommandError("--json is incompatible with --stats and --stats-only")
    try:
        formatter = JobInfoFormat(resolve_format(args.format))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    with handle() as h:
        if args.stats or args.stats_only:
            line, active = stats_line(h)
            print(line)
            if args.stats_only:
                return 0 if active else 1
        records, errors = fetch_jobs(h, args, prog)
    jobs = [JobInfo(r) for r in records]
    if args.json:
        if len(args.jobids) == 1 and len(jobs) == 1:
            print(json.dumps(jobs[0].to_dict(), ensure_ascii=False))
        else:
            print(json.dumps({"jobs": [j.to_dict() for j in jobs]}, ensure_ascii=False))
    else:
        colors = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        text = formatter.text(jobs, no_header=args.no_header)
        if colors:
            text = _colorize(text, jobs, args.no_header)
        sys.stdout.write(text)
        if args.recursive:
            _recurse(records, args, formatter, prog, [], 1)
    sys.stdout.flush()
    for err in errors:
        print(err, file=sys.stderr)
    return 1 if errors else 0


def _recurse(records, args, formatter, prog: str, path: list[str], level: int) -> None:
    """As flux jobs -R: the jobs of each running nested instance, after a line
    naming its jobid path from here (``ƒA/ƒB:``)."""
    from ..job import JobID
    from ..runtime.client import Flux
    from .jobinfo_format import JobInfo
    if args.level is not None and level > args.level:
        return
    for rec in records:
        uri = ((rec.get("annotations") or {}).get("user") or {}).get("uri")
        if not uri or not rec.get("state", 0) & (16 | 32):
            continue
        here = path + [JobID(rec["id"]).f58]
        try:
            with Flux(uri) as child:
                sub, _ = fetch_jobs(child, args, prog)
        except OSError:
            continue  # the instance ended while we looked
        print(f"\n{'/'.join(here)}:")
        sys.stdout.write(formatter.text([JobInfo(r) for r in sub], no_header=args.no_header))
        _recurse(sub, args, formatter, prog, here, level + 1)


_COLORS = {"COMPLETED": "\033[01;32m", "FAILED": "\033[01;31m", "CANCELED": "\033[37m",
           "TIMEOUT": "\033[01;31m"}


def _colorize(text: str, jobs, no_header: bool) -> str:
    lines = text.splitlines()
    head = [] if no_header else lines[:1]
    body = lines[len(head):]
    out = list(head)
    for job, line in zip(jobs, body):
        color = _COLORS.get(job.result)
        out.append(f"{color}{line}\033[0;0m" if color else line)
    return "".join(line + "\n" for line in out)
