"""The options ``flux run``, ``flux submit`` and ``flux bulksubmit`` share, and the
jobspec they build, as flux-core's ``flux.cli.base`` defines them.

Resource counts are parsed late (strings in the namespace) so that ``bulksubmit``
can substitute its inputs into them, as flux does (``-n {}``).

Examples
--------
>>> environment_rules(["-*", "A=1", "B=${A}2"], environ={"X": "y"})
{'A': '1', 'B': '12'}
>>> parse_keyval("--setattr", "exec.test.run_duration=0.01s")
('exec.test.run_duration', '0.01s')
>>> parse_keyval("--setopt", "foo")
('foo', 1)
"""

from __future__ import annotations

import argparse
import json
import os
import re
TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    from typing import Any, Mapping

from .common import CommandError

#: Options bulksubmit substitutes its inputs into (dest -> how its text is shown).
MUTABLE_OPTIONS: dict[str, str] = {
    "queue": "-q", "ntasks": "-n", "nodes": "-N", "cores_per_task": "-c",
    "gpus_per_task": "-g", "time_limit": "-t", "env": "--env=", "urgency": "--urgency=",
    "setopt": "-o ", "setattr": "--setattr=", "job_name": "--job-name=",
    "input": "--input=", "output": "--output=", "error": "--error=", "cc": "--cc=",
    "bcc": "--bcc=", "dependency": "--dependency=",
}

URGENCY_NAMES = {"default": 16, "hold": 0, "expedite": 31}


class _EnvRemove(argparse.Action):
    """``--env-remove=PATTERN`` is the rule ``-PATTERN``, kept in order with ``--env``."""

    def __call__(self, parser, namespace, values, option_string=None):
        rules = list(getattr(namespace, "env", None) or [])
        rules.append("-" + values)
        namespace.env = rules


class _EnvFile(argparse.Action):
    """``--env-file=FILE`` is the rule ``^FILE``."""

    def __call__(self, parser, namespace, values, option_string=None):
        rules = list(getattr(namespace, "env", None) or [])
        rules.append("^" + values)
        namespace.env = rules


def add_submit_options(p: argparse.ArgumentParser, bulk: bool) -> None:
    """Add the options of ``flux run`` (and, with ``bulk``, of submit/bulksubmit)."""
    p.add_argument("-q", "--queue", metavar="NAME", help="Submit a job to a specific named queue")
    p.add_argument("-t", "--time-limit", metavar="MIN|FSD",
                   help="Time limit in minutes when no units provided, otherwise in "
                        "Flux standard duration, e.g. 30s, 2d, 1.5h")
    p.add_argument("--urgency", metavar="N", default="16",
                   help="Set job urgency (0-31), hold=0, default=16, expedite=31")
    p.add_argument("--job-name", metavar="NAME", help="Set an optional name for job to NAME")
    p.add_argument("-o", "--setopt", action="append", metavar="OPT",
                   help="Set shell option OPT. An optional value is supported with OPT=VAL "
                        "(default VAL=1) (multiple use OK)")
    p.add_argument("--setattr", action="append", metavar="ATTR",
                   help="Set job attribute ATTR. An optional value is supported with "
                        "ATTR=VAL (default VAL=1). (multiple use OK)")
    p.add_argument("--dependency", action="append", metavar="URI",
                   help="Set an RFC 26 dependency URI for this job")
    p.add_argument("--env", action="append", metavar="RULE",
                   help="Control how environment variables are exported: -PATTERN removes, "
                        "^FILE reads rules, VAR=VAL sets, PATTERN copies from the current "
                        "environment. Rules apply in order. (multiple use OK)")
    p.add_argument("--env-remove", action=_EnvRemove, metavar="PATTERN",
                   help="Remove environment variables matching PATTERN (a shell glob, or a "
                        "regex if it starts with '/'). (multiple use OK)")
    p.add_argument("--env-file", action=_EnvFile, metavar="FILE",
                   help="Read a set of environment rules from FILE. (multiple use OK)")
    p.add_argument("--input", metavar="FILENAME", help="Redirect job stdin from FILENAME")
    p.add_argument("--output", metavar="FILENAME",
                   help="Redirect job stdout to FILENAME, bypassing KVS")
    p.add_argument("--error", metavar="FILENAME",
                   help="Redirect job stderr to FILENAME, bypassing KVS")
    p.add_argument("-u", "--unbuffered", action="store_true",
                   help="Disable buffering of input and output")
    p.add_argument("-l", "--label-io", action="store_true",
                   help="Add rank labels to stdout, stderr lines")
    p.add_argument("--cwd", metavar="DIRECTORY", help="Set job working directory")
    p.add_argument("--flags", action="append", metavar="FLAGS",
                   help="Set comma separated list of job submission flags. Possible flags: "
                        "debug, waitable, novalidate")
    p.add_argument("--dry-run", action="store_true",
                   help="Don't actually submit job, just emit jobspec")
    p.add_argument("--quiet", action="store_true",
                   help="Do not print jobid to stdout on submission")
    p.add_argument("-N", "--nodes", metavar="N", help="Number of nodes to allocate")
    p.add_argument("-x", "--exclusive", action="store_true",
                   help="With -N, --nodes, allocate nodes exclusively")
    p.add_argument("-n", "--ntasks", metavar="N", help="Number of tasks to start")
    p.add_argument("-c", "--cores-per-task", metavar="N",
                   help="Number of cores to allocate per task")
    p.add_argument("-g", "--gpus-per-task", metavar="N",
                   help="Number of GPUs to allocate per task")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="Increase verbosity on stderr (multiple use OK)")
    if not bulk:
        return
    p.add_argument("--cc", metavar="IDSET",
                   help="Replicate job for each ID in IDSET. (FLUX_JOB_CC=ID will be set "
                        "for each job submitted)")
    p.add_argument("--bcc", metavar="IDSET", help="Like --cc, but FLUX_JOB_CC is not set")
    p.add_argument("--wait-event", metavar="NAME", dest="wait",
                   help="Wait for event NAME for all jobs after submission")
    p.add_argument("--wait", action="store_const", const="clean",
                   help="Wait for all jobs to complete after submission "
                        "(same as --wait-event=clean)")
    p.add_argument("--watch", action="store_true",
                   help="Watch all job output (implies --wait)")
    p.add_argument("--progress", action="store_true",
                   help="Show progress of job submission or completion (with --wait)")
    p.add_argument("--jps", action="store_true", help="With --progress, show job throughput")


# -- environment -----------------------------------------------------------------------
def _pattern(pattern: str) -> re.Pattern:
    """A shell glob, or a regex when it starts with '/' (``/^FLUX_/``)."""
    if pattern.startswith("/"):
        return re.compile(pattern[1:].rstrip("/"))
    import fnmatch
    return re.compile(fnmatch.translate(pattern))


def environment_rules(rules: list[str] | None, environ: Mapping[str, str] | None = None
                      ) -> dict[str, str]:
    """Apply flux's ``--env`` rules, in order, to a copy of ``environ`` (``os.environ``).

    ``-PATTERN`` removes matching variables; ``^FILE`` reads more rules from FILE;
    ``VAR=VAL`` sets VAR, expanding ``$NAME`` from the environment built so far and
    then the caller's; a bare ``PATTERN`` copies matching variables of the caller's
    environment that are not already set.

    Raises
    ------
    CommandError
        For an unknown ``$NAME`` or an unreadable rules file.
    """
    env = dict(os.environ if environ is None else environ)
    for rule in rules or []:
        if rule.startswith("-"):
            regex = _pattern(rule[1:])
            env = {k: v for k, v in env.items() if not regex.match(k)}
        elif rule.startswith("^"):
            path = os.path.expanduser(rule[1:])
            try:
                with open(path) as f:
                    lines = [line.strip() for line in f if line.strip()]
            except OSError as exc:
                raise CommandError(f"--env-file={rule[1:]}: {exc.strerror}") from None
            env = environment_rules(lines, env)
        elif "=" in rule:
            var, _, value = rule.partition("=")
            try:
                from collections import ChainMap
                from string import Template
                env[var] = Template(value).substitute(ChainMap(env, os.environ))
            except KeyError as exc:
                raise CommandError(f"--env: Variable {exc} not found in {rule}") from None
            except ValueError:
                raise CommandError(f"--env: Unable to substitute {rule}") from None
        else:
            regex = _pattern(rule)
            for key, value in os.environ.items():
                if regex.match(key) and key not in env:
                    env[key] = value
    return env


# -- option values ---------------------------------------------------------------------
def parse_keyval(label: str, keyval: str) -> tuple[str, Any]:
    """``KEY[=VAL]`` of ``--setattr``/``--setopt``: VAL is JSON if it parses, else a
    string, and 1 when absent; ``^KEY=FILE`` loads the value as JSON from FILE."""
    key, sep, text = keyval.partition("=")
    if not key:
        raise CommandError(f"{label}: missing key in '{keyval}'")
    if not sep:
        return key, 1
    if key.startswith("^"):
        try:
            with open(text) as f:
                return key.lstrip("^"), json.load(f)
        except OSError as exc:
            raise CommandError(f"{label}: {text}: {exc.strerror}") from None
        except ValueError as exc:
            raise CommandError(f"{label}: {text}: {exc}") from None
    try:
        return key, json.loads(text)
    except ValueError:
        return key, text


def parse_count(option: str, value: str | int | None, minimum: int = 1) -> int | None:
    """An integer option given as text (``-n 4``); None if not given."""
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise CommandError(f"--{option}: invalid int value '{value}'") from None
    if count < minimum:
        raise CommandError(f"--{option}: value must be >= {minimum}, got {count}")
    return count


def parse_time_limit(value: str) -> float:
    """``-t``: minutes when there are no units (as flux), else an RFC 23 FSD."""
    import math

    from ..runtime.util.fsd import parse_fsd
    try:
        seconds = float(value) * 60
    except ValueError:
        try:
            seconds = parse_fsd(value)
        except ValueError as exc:
            raise CommandError(f"--time-limit: {exc}") from None
    if seconds < 0:  # flux: "duration must not be negative"
        raise CommandError(f"--time-limit={value}: duration must not be negative")
    if not math.isfinite(seconds):
        raise CommandError(f"--time-limit={value}: duration must be finite")
    return seconds


def parse_urgency(value: str | int) -> int:
    """``--urgency``: 0-31, or ``hold``, ``default``, ``expedite``."""
    if isinstance(value, str) and value in URGENCY_NAMES:
        return URGENCY_NAMES[value]
    try:
        urgency = int(value)
    except ValueError:
        raise CommandError(f"--urgency: invalid value '{value}' "
                           "(use 0-31, hold, default or expedite)") from None
    if not 0 <= urgency <= 31:
        raise CommandError(f"--urgency: {urgency} is out of range (0-31)")
    return urgency


def parse_flags(values: list[str] | None) -> dict[str, bool]:
    """``--flags=debug,waitable,novalidate`` as submit keyword arguments."""
    flags = {"debug": False, "waitable": False, "novalidate": False}
    for value in values or []:
        for flag in filter(None, value.split(",")):
            if flag not in flags:
                raise CommandError(f"--flags: Unknown flag {flag}")
            flags[flag] = True
    return flags


def cc_list(args: argparse.Namespace) -> "list[None] | IDSet":
    """The copies ``--cc``/``--bcc`` ask for (``[None]``: just one job)."""
    if args.cc and args.bcc:
        raise CommandError("specify only one of --cc or --bcc")
    spec = args.cc or args.bcc
    if not spec:
        return [None]
    from ..runtime.util.idset import IDSet
    opt = "cc" if args.cc else "bcc"
    try:
        ids = IDSet(spec)
    except ValueError as exc:
        raise CommandError(f"--{opt}={spec}: {exc}") from None
    if len(ids) > CC_MAX:
        raise CommandError(f"--{opt}={spec}: {len(ids)} copies is more than the limit of "
                           f"{CC_MAX}; submit them in several commands")
    return ids  # iterated lazily: a large range is never a list


#: most copies one ``--cc``/``--bcc`` may ask for
CC_MAX = 100_000


# -- the jobspec -------------------------------------------------------------------------
def build_jobspec(args: argparse.Namespace, command: list[str]):
    """The V1 jobspec ``flux run``/``submit`` build from their options.

    As flux: ``-N`` without ``-n`` runs one task per node exclusively; the job gets
    the caller's environment filtered by ``--env`` rules and runs in ``--cwd`` (the
    current directory by default).

    Raises
    ------
    CommandError
        Naming the option whose value is wrong.
    """
    from ..job import JobspecV1
    from ..runtime.job.dependencies import DependencyError, parse_dependency_uri

    if not command:
        raise CommandError("job command and arguments are missing")
    ntasks = parse_count("ntasks", args.ntasks)
    nodes = parse_count("nodes", args.nodes)
    cores = parse_count("cores-per-task", args.cores_per_task) or 1
    gpus = parse_count("gpus-per-task", args.gpus_per_task, minimum=0)
    exclusive = args.exclusive
    if ntasks is None and nodes:
        ntasks, exclusive = nodes, True
    try:
        jobspec = JobspecV1.from_command(command, num_tasks=ntasks or 1, cores_per_task=cores,
                                         gpus_per_task=gpus, num_nodes=nodes,
                                         exclusive=exclusive, environment={})
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    jobspec.environment = environment_rules(args.env)
    jobspec.cwd = args.cwd if args.cwd is not None else os.getcwd()
    if args.time_limit is not None:
        jobspec.duration = parse_time_limit(args.time_limit)
    if args.dependency:
        try:
            deps = [parse_dependency_uri(uri) for uri in args.dependency]
        except DependencyError as exc:
            raise CommandError(str(exc)) from None
        jobspec.setattr("system.dependencies", deps)
    if args.job_name is not None:
        jobspec.setattr("system.job.name", args.job_name)
    if args.input is not None:
        jobspec.stdin = args.input
    if args.output is not None and args.output not in ("none", "kvs"):
        jobspec.stdout = args.output
        if args.label_io:
            jobspec.setattr_shell_option("output.stdout.label", True)
    if args.error is not None and args.error not in ("none", "kvs"):  # as flux: KVS
        jobspec.stderr = args.error
        if args.label_io:
            jobspec.setattr_shell_option("output.stderr.label", True)
    if args.unbuffered:
        jobspec.unbuffered = True
    for keyval in args.setopt or []:
        key, val = parse_keyval("--setopt", keyval)
        jobspec.setattr_shell_option(key, val)
    if args.queue is not None:
        jobspec.setattr("system.queue", args.queue)
    for keyval in args.setattr or []:
        key, val = parse_keyval("--setattr", keyval)
        # as flux: no "user."/"system." prefix means "system."; a leading "." is the top
        if not key.startswith((".", "user.", "system.")):
            key = "system." + key
        try:
            jobspec.setattr("attributes." + key.lstrip("."), val)
        except TypeError as exc:
            raise CommandError(f"--setattr={keyval}: {exc}") from None
    return jobspec


# -- bulksubmit substitution ----------------------------------------------------------------
class Input(str):
    """One bulksubmit input, with flux's format attributes: ``{0.%}`` (no extension),
    ``{0./}`` (basename), ``{0.//}`` (dirname), ``{0./%}`` (basename, no extension)."""

    def __getattr__(self, attr: str) -> str:
        if attr == "%":
            return os.path.splitext(self)[0]
        if attr == "/":
            return os.path.basename(self)
        if attr == "//":
            return os.path.dirname(self)
        if attr == "/%":
            return os.path.basename(os.path.splitext(self)[0])
        raise AttributeError(attr)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _keep_mustache(text: str) -> str:
    return text.replace("{{", "\0stache\0").replace("}}", "\0/stache\0")


def _restore_mustache(text: str) -> str:
    return text.replace("\0stache\0", "{{").replace("\0/stache\0", "}}")


def substitute(text: str, inputs: list[str], where: str, **kwargs: Any) -> str:
    """``text.format(*inputs, **kwargs)``, leaving ``{{id}}``-style templates alone."""
    try:
        result = _keep_mustache(text).format(*[Input(x) for x in inputs], **kwargs)
    except IndexError:
        raise CommandError(f"Invalid replacement index in {where}'{text}'") from None
    except KeyError as exc:
        raise CommandError(f"Replacement key {exc} not found in '{where}{text}'") from None
    except (AttributeError, ValueError) as exc:
        raise CommandError(f"Invalid replacement string in '{where}{text}': {exc}") from None
    return _restore_mustache(result)


def substitute_args(args: argparse.Namespace, inputs: list[str], **kwargs: Any
                    ) -> tuple[argparse.Namespace, list[str]]:
    """A copy of ``args`` with ``inputs`` formatted into the command and the mutable
    options, and the text of the options that changed (for ``bulksubmit: submit ...``)."""
    new = argparse.Namespace(**vars(args))
    shown = []
    for dest, flag in MUTABLE_OPTIONS.items():
        val = getattr(args, dest, None)
        if val is None:
            continue
        if isinstance(val, list):
            newval: Any = [substitute(v, inputs, flag, **kwargs) for v in val]
        elif isinstance(val, str):
            newval = substitute(val, inputs, flag, **kwargs)
        else:
            newval = val
        setattr(new, dest, newval)
        if newval != val or dest == "cc":
            shown.append(f"{flag}{newval}")
    new.command = [substitute(a, inputs, "", **kwargs) for a in args.command]
    return new, shown
