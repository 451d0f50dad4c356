"""Jobspec: canonical (RFC 14) and version 1 (RFC 25) job specifications.

:class:`Jobspec` and :class:`JobspecV1` mirror flux-core's
``flux.job.Jobspec`` and ``flux.job.JobspecV1``: the same constructors,
factories (``from_command``, ``from_batch_command``, ``from_nest_command``),
properties and dotted-key attribute helpers. Construction validates (see
:mod:`fluxnb.runtime.job.jobspec_validate`, re-exported here as
:func:`validate` and :class:`JobspecError`): errors name the JSON path and the
rule broken, e.g. ``resources[0].with[1].count: must be >= 1``.

Examples
--------
>>> js = JobspecV1.from_command(["hostname"], num_tasks=4, environment={})
>>> js.resources
[{'type': 'slot', 'count': 4, 'with': [{'type': 'core', 'count': 1}], 'label': 'task'}]
>>> js.duration = "1.5m"
>>> js.duration
90.0
>>> JobspecV1.from_command(["true"], num_tasks=0)
Traceback (most recent call last):
...
ValueError: task count must be an integer >= 1
"""

from __future__ import annotations

import base64
import collections
import json
import math
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence

TYPE_CHECKING = False  # not typing's: a `flux` command would import typing for it
if TYPE_CHECKING:
    import datetime
    from typing import Any, Iterator

from fluxnb.runtime.job.jobspec_validate import (
    TOP_LEVEL_KEYS,
    JobspecError,
    load_yaml,
    validate,
)
from fluxnb.runtime.util.fsd import parse_fsd

__all__ = ["Jobspec", "JobspecV1", "JobspecError", "validate", "load_yaml"]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_timedelta(x: Any) -> bool:
    """isinstance(x, datetime.timedelta), importing datetime only if the caller has:
    whoever made a timedelta imported it (a `flux run` needs no datetime)."""
    dt = sys.modules.get("datetime")
    return dt is not None and isinstance(x, dt.timedelta)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _attr_key(key: str) -> str:
    # As flux: "x" means attributes.system.x; "user."/"system." are under
    # attributes; "attributes." is taken as given.
    if not key.startswith("attributes."):
        if not key.startswith(("user.", "system.")):
            key = "system." + key
        key = "attributes." + key
    return key


class Jobspec:
    """A canonical (RFC 14) jobspec, validated on construction.

    Parameters
    ----------
    resources, tasks, attributes, version
        The four top-level jobspec sections; ``Jobspec(**jobspec_dict)`` works.

    Attributes
    ----------
    jobspec : dict
        The jobspec itself, as sent to the job manager.
    """

    top_level_keys = frozenset(TOP_LEVEL_KEYS)
    _validate_version: int | None = None

    def __init__(self, resources: list, tasks: list, attributes: dict, version: int) -> None:
        self.jobspec: dict[str, Any] = {
            "resources": resources,
            "tasks": tasks,
            "attributes": attributes,
            "version": version,
        }
        validate(self.jobspec, self._validate_version)

    @classmethod
    def _from_dict(cls, data: Any) -> Jobspec:
        validate(data, cls._validate_version)
        return cls(**data)

    @classmethod
    def from_yaml_stream(cls, yaml_stream: Any) -> Jobspec:
        """Create a jobspec from YAML/JSON text or a file-like object."""
        return cls._from_dict(load_yaml(yaml_stream))

    @classmethod
    def from_yaml_file(cls, filename: str | os.PathLike) -> Jobspec:
        """Create a jobspec from a YAML/JSON file; errors name the file."""
        with open(filename, "rb") as infile:
            data = load_yaml(infile, name=os.fspath(filename))
        try:
            return cls._from_dict(data)
        except JobspecError as exc:
            raise JobspecError(exc.path, f"{exc.reason} (in {os.fspath(filename)})") from None

    def validate(self) -> None:
        """Re-check the jobspec, e.g. after using the setters."""
        validate(self.jobspec, self._validate_version)

    # -- sections ---------------------------------------------------------
    @property
    def resources(self) -> list:
        """The ``resources`` section."""
        return self.jobspec.get("resources")

    @property
    def tasks(self) -> list:
        """The ``tasks`` section."""
        return self.jobspec.get("tasks")

    @property
    def attributes(self) -> dict:
        """The ``attributes`` section."""
        return self.jobspec.get("attributes")

    @property
    def version(self) -> int:
        """The jobspec version."""
        return self.jobspec.get("version")

    # -- attribute helpers ------------------------------------------------
    def getattr(self, key: str) -> Any:
        """Get an attribute by dotted key (``duration``, ``system.cwd``,
        ``user.x``, ``attributes.system.cwd``); KeyError if it is absent."""
        value: Any = self.jobspec
        for part in _attr_key(key).split("."):
            if not isinstance(value, Mapping) or value.get(part) is None:
                raise KeyError(key)
            value = value[part]
        return value

    def setattr(self, key: str, val: Any) -> None:
        """Set an attribute by dotted key, creating intermediate mappings."""
        full = _attr_key(key)
        parts = full.split(".")
        node = self.jobspec
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise TypeError(f"failed to set {full}: {where} is not a mapping")
            node = child
        node[parts[-1]] = val

    def setattr_shell_option(self, key: str, val: Any) -> None:
        """Set ``attributes.system.shell.options.<key>``."""
        self.setattr("system.shell.options." + key, val)

    def _get_system(self, key: str) -> Any:
        try:
            return self.getattr("system." + key)
        except KeyError:
            return None

    @property
    def duration(self) -> float | None:
        """Time limit in seconds (0 means unlimited). Set it as seconds, an
        RFC 23 string such as ``"5m"``, or a ``datetime.timedelta``."""
        return self._get_system("duration")

    @duration.setter
    def duration(self, duration: float | str | datetime.timedelta) -> None:
        if isinstance(duration, str):
            seconds = parse_fsd(duration)
        elif _is_number(duration):
            seconds = float(duration)
        elif _is_timedelta(duration):
            seconds = duration.total_seconds()
        else:
            raise TypeError(f"duration must be seconds, an FSD string or a timedelta, "
                            f"not {type(duration).__name__}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"duration must be finite and >= 0, got {duration!r}")
        self.setattr("system.duration", seconds)

    @property
    def queue(self) -> str | None:
        """Target queue."""
        return self._get_system("queue")

    @queue.setter
    def queue(self, queue: str) -> None:
        if not isinstance(queue, str):
            raise TypeError("queue must be a string")
        self.setattr("system.queue", queue)

    @property
    def cwd(self) -> str | None:
        """Working directory of the tasks."""
        return self._get_system("cwd")

    @cwd.setter
    def cwd(self, cwd: str | os.PathLike) -> None:
        if isinstance(cwd, os.PathLike):
            cwd = os.fspath(cwd)
        if not isinstance(cwd, str):
            raise ValueError("cwd must be a string or path")
        self.setattr("system.cwd", cwd)

    @property
    def environment(self) -> dict | None:
        """Environment of the tasks (the mapping is stored, not copied)."""
        return self._get_system("environment")

    @environment.setter
    def environment(self, environ: Mapping) -> None:
        if not isinstance(environ, Mapping):
            raise ValueError("environment must be a mapping")
        self.setattr("system.environment", environ)

    def _get_io_path(self, iotype: str, stream: str) -> str | None:
        return self._get_system(f"shell.options.{iotype}.{stream}.path")

    def _set_io_path(self, iotype: str, stream: str, path: str | os.PathLike) -> None:
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError(f"the path must be a string or path, got {type(path).__name__}")
        self.setattr_shell_option(f"{iotype}.{stream}.type", "file")
        self.setattr_shell_option(f"{iotype}.{stream}.path", path)

    input = property(lambda self: self._get_io_path("input", "stdin"),
                     lambda self, p: self._set_io_path("input", "stdin", p),
                     doc="File for stdin (``shell.options.input.stdin.path``).")
    output = property(lambda self: self._get_io_path("output", "stdout"),
                      lambda self, p: self._set_io_path("output", "stdout", p),
                      doc="File for stdout (``shell.options.output.stdout.path``).")
    error = property(lambda self: self._get_io_path("output", "stderr"),
                     lambda self, p: self._set_io_path("output", "stderr", p),
                     doc="File for stderr (``shell.options.output.stderr.path``).")
    stdin, stdout, stderr = input, output, error

    @property
    def unbuffered(self) -> bool:
        """True if stdout and stderr are unbuffered."""
        return (self._get_system("shell.options.output.stdout.buffer.type") == "none"
                and self._get_system("shell.options.output.stderr.buffer.type") == "none")

    @unbuffered.setter
    def unbuffered(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError("unbuffered must be True or False")
        if value:
            self.setattr_shell_option("output.stdout.buffer.type", "none")
            self.setattr_shell_option("output.stderr.buffer.type", "none")
            self.setattr_shell_option("output.batch-timeout", 0.05)
            self.setattr_shell_option("input.batch-timeout", 0.0)
            return
        options = self._get_system("shell.options") or {}
        for stream in ("stdout", "stderr"):
            options.get("output", {}).get(stream, {}).pop("buffer", None)
        # Only undo the batch timeouts this setter chose, not a user's own.
        for iotype, default in (("output", 0.05), ("input", 0.0)):
            if options.get(iotype, {}).get("batch-timeout") == default:
                del options[iotype]["batch-timeout"]

    def add_file(self, path: str, data: Mapping | str, perms: int | None = None,
                 encoding: str | None = None) -> None:
        """Add a file to ``attributes.system.files`` (RFC 37 file archive).

        ``data`` is file content if it is a mapping (stored as JSON), if
        ``encoding`` is given, or if it contains a newline; otherwise it is
        the path of a local file whose content is embedded.
        """
        if not isinstance(data, (Mapping, str)):
            raise TypeError("data must be a mapping or a string")
        mode = (0o600 if perms is None else perms) | stat.S_IFREG
        if isinstance(data, Mapping):
            ref: dict[str, Any] = {"mode": mode, "data": data}
        elif encoding is not None or "\n" in data:
            encoding = encoding or "utf-8"
            if encoding not in ("utf-8", "base64"):
                raise ValueError(f"invalid encoding {encoding!r} (use utf-8 or base64)")
            ref = {"mode": mode, "data": data, "encoding": encoding}
        else:
            st = os.stat(data)
            with open(data, "rb") as f:
                raw = f.read()
            ref = {"mode": st.st_mode, "size": st.st_size}
            try:
                ref.update(data=raw.decode("utf-8"), encoding="utf-8")
            except UnicodeDecodeError:
                ref.update(data=base64.b64encode(raw).decode("ascii"), encoding="base64")
        files = self._get_system("files") or {}
        files[path] = ref
        self.setattr("system.files", files)

    # -- output -----------------------------------------------------------
    def dumps(self, **kwargs: Any) -> str:
        """The jobspec as JSON (``json.dumps`` keyword arguments accepted)."""
        return json.dumps(self.jobspec, ensure_ascii=False, **kwargs)

    def to_yaml(self) -> str:
        """The jobspec as YAML."""
        import yaml
        return yaml.safe_dump(self.jobspec, sort_keys=False, allow_unicode=True)

    # -- resources --------------------------------------------------------
    def __iter__(self) -> Iterator[dict]:
        """Resource vertices, depth-first pre-order."""
        def walk(vertices):
            for res in vertices:
                yield res
                yield from walk(res.get("with", []))
        return walk(self.resources)

    def resource_walk(self) -> Iterator[tuple[dict | None, dict, int]]:
        """Yield ``(parent, vertex, count)`` depth-first, where ``count``
        multiplies the counts of the vertex and its ancestors. A range count
        contributes its minimum."""
        def walk(vertices, parent, mult):
            for res in vertices:
                count = mult * _count_min(res["count"])
                yield parent, res, count
                yield from walk(res.get("with", []), res, count)
        return walk(self.resources, None, 1)

    def resource_counts(self) -> dict[str, int]:
        """Total count of each resource type (units are not converted)."""
        counts: dict[str, int] = collections.defaultdict(int)
        for _, res, count in self.resource_walk():
            counts[res["type"]] += count
        return counts

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.resources!r}, {self.tasks!r}, "
                f"attributes={self.attributes!r}, version={self.version!r})")

    def __str__(self) -> str:
        return str(self.jobspec)


def _count_min(count: Any) -> int:
    if isinstance(count, Mapping):
        return count["min"]
    if isinstance(count, str):
        return int(re.split(r"[-+,:]", count, maxsplit=1)[0])
    return count


class JobspecV1(Jobspec):
    """A version 1 jobspec (RFC 25), what ``flux submit`` produces."""

    _validate_version = 1

    def __init__(self, resources: list, tasks: list, attributes: dict, version: int = 1) -> None:
        super().__init__(resources, tasks, attributes, version)

    @staticmethod
    def _resource(rtype: str, count: int, children: list | None = None,
                  exclusive: bool = False) -> dict:
        res: dict[str, Any] = {"type": rtype, "count": count}
        if exclusive:
            res["exclusive"] = True
        if children:
            res["with"] = children
        return res

    def _set_extra_options(self, duration=None, environment=None, env_expand=None, cwd=None,
                           rlimits=None, name=None, input=None, output=None, error=None,
                           label_io=False, unbuffered=False, queue=None, bank=None) -> JobspecV1:
        if duration is not None:
            self.duration = duration
        # As flux: with no environment given, the job gets the caller's.
        self.environment = dict(os.environ) if environment is None else environment
        for key, value in (("env-expand", env_expand), ("rlimit", rlimits)):
            if value is not None:
                if not isinstance(value, Mapping):
                    raise ValueError(f"{key} must be a mapping")
                self.setattr_shell_option(key, value)
        if cwd is not None:
            self.cwd = cwd
        if name is not None:
            self.setattr("job.name", name)
        if input is not None:
            self.input = input
        for attr, stream, path in (("output", "stdout", output), ("error", "stderr", error)):
            if path is not None and path not in ("none", "kvs"):
                setattr(self, attr, path)
                if label_io:
                    self.setattr_shell_option(f"output.{stream}.label", True)
        if unbuffered:
            self.unbuffered = True
        if queue is not None:
            self.setattr("queue", queue)
        if bank is not None:
            self.setattr("bank", bank)
        return self

    @classmethod
    def from_command(cls, command: Sequence[str], num_tasks: int = 1, cores_per_task: int = 1,
                     gpus_per_task: int | None = None, num_nodes: int | None = None,
                     exclusive: bool = False, duration: float | str | None = None,
                     environment: Mapping | None = None, env_expand: Mapping | None = None,
                     cwd: str | None = None, rlimits: Mapping | None = None,
                     **kwargs: Any) -> JobspecV1:
        """Build the minimal V1 jobspec running ``command`` as ``num_tasks`` tasks.

        Each task gets a slot labelled ``task`` of ``cores_per_task`` cores
        (and ``gpus_per_task`` gpus). With ``num_nodes`` the slots are spread
        over that many nodes: ``ceil(num_tasks / num_nodes)`` slots per node,
        tasks counted ``total`` if they do not divide evenly. Extra keyword
        arguments: ``name``, ``input``, ``output``, ``error``, ``label_io``,
        ``unbuffered``, ``queue``, ``bank``. Without ``environment`` the
        job inherits ``os.environ``.
        """
        if not _is_int(num_tasks) or num_tasks < 1:
            raise ValueError("task count must be an integer >= 1")
        if not _is_int(cores_per_task) or cores_per_task < 1:
            raise ValueError("cores per task must be an integer >= 1")
        if gpus_per_task is not None and (not _is_int(gpus_per_task) or gpus_per_task < 0):
            raise ValueError("gpus per task must be an integer >= 0")
        if num_nodes is not None:
            if not _is_int(num_nodes) or num_nodes < 1:
                raise ValueError("node count must be an integer >= 1 (if set)")
            if num_nodes > num_tasks:
                raise ValueError("node count must not be greater than task count")
        elif exclusive:
            raise ValueError("exclusive can only be set with a node count")
        if isinstance(command, (str, bytes)) or not isinstance(command, Sequence):
            raise TypeError("command must be a list of strings")
        children = [cls._resource("core", cores_per_task)]
        if gpus_per_task:
            children.append(cls._resource("gpu", gpus_per_task))
        count: dict[str, int] = {"per_slot": 1}
        if num_nodes is not None:
            slot = cls._resource("slot", -(-num_tasks // num_nodes), children)
            slot["label"] = "task"
            if num_tasks % num_nodes:
                count = {"total": num_tasks}  # uneven: some slots stay empty
            top = cls._resource("node", num_nodes, [slot], exclusive)
        else:
            top = cls._resource("slot", num_tasks, children)
            top["label"] = "task"
        tasks = [{"command": list(command), "slot": "task", "count": count}]
        jobspec = cls([top], tasks, attributes={"system": {"duration": 0}})
        return jobspec._set_extra_options(duration=duration, environment=environment,
                                          env_expand=env_expand, cwd=cwd, rlimits=rlimits,
                                          **kwargs)

    @classmethod
    def from_nest_command(cls, command: Sequence[str], num_slots: int = 1,
                          cores_per_slot: int = 1, gpus_per_slot: int | None = None,
                          num_nodes: int | None = None, broker_opts: Sequence[str] | None = None,
                          exclusive: bool = False, conf: Mapping | None = None,
                          **kwargs: Any) -> JobspecV1:
        """Jobspec for a nested instance (``flux alloc``) running ``command``.

        Runs ``flux broker [broker_opts] command`` once per node over
        ``num_slots`` slots; ``conf`` is embedded as file ``conf.json`` and
        passed to the brokers with ``-c{{tmpdir}}/conf.json``.
        """
        opts = list(broker_opts) if broker_opts is not None else []
        if conf is not None:
            opts.append("-c{{tmpdir}}/conf.json")
        jobspec = cls.from_command(["flux", "broker", *opts, *command], num_tasks=num_slots,
                                   cores_per_task=cores_per_slot, gpus_per_task=gpus_per_slot,
                                   num_nodes=num_nodes, exclusive=exclusive, **kwargs)
        jobspec.setattr_shell_option("per-resource.type", "node")
        jobspec.setattr_shell_option("mpi", "none")
        jobspec.setattr_shell_option("exit-timeout", "none")
        jobspec.setattr_shell_option("pmi", "simple")
        if conf is not None:
            jobspec.add_file("conf.json", conf)
        return jobspec

    @classmethod
    def from_batch_command(cls, script: str, jobname: str, args: Sequence[str] | None = None,
                           num_slots: int = 1, cores_per_slot: int = 1,
                           gpus_per_slot: int | None = None, num_nodes: int | None = None,
                           broker_opts: Sequence[str] | None = None, exclusive: bool = False,
                           conf: Mapping | None = None, **kwargs: Any) -> JobspecV1:
        """Jobspec for a batch job (``flux batch``): a nested instance whose
        initial program is ``script`` (embedded as file ``script``, mode 0700,
        run as ``{{tmpdir}}/script args...``). The script must start with ``#!``.
        """
        if not script.startswith("#!"):
            raise ValueError(f"{jobname} does not appear to start with '#!'")
        jobspec = cls.from_nest_command(["{{tmpdir}}/script", *(args or ())],
                                        num_slots=num_slots, cores_per_slot=cores_per_slot,
                                        gpus_per_slot=gpus_per_slot, num_nodes=num_nodes,
                                        broker_opts=broker_opts, exclusive=exclusive, conf=conf,
                                        name=jobname, **kwargs)
        jobspec.add_file("script", script, perms=0o700, encoding="utf-8")
        return jobspec

