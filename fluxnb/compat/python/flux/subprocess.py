"""``flux.subprocess``: background processes through a rexec service (RFC 42), as
flux-core's: ``rexec_bg()`` starts one (optionally waitable, labeled, on a given
rank), ``kill()`` signals one and ``wait()`` collects a waitable one's wait status and
kept output (by pid or label), ``list()`` lists a rank's processes.

Requests are signed (RFC 42) only if asked, or, by default, when the instance owner is
not this user; signing needs flux-security, which fluxnb does not have (OSError).
"""

import base64
import json
import os
from dataclasses import dataclass

from flux.constants import FLUX_NODEID_ANY
from flux.rpc import RPC

#: ``rexec.exec`` flag: the process may be waited for
SUBPROCESS_REXEC_WAITABLE = 16

try:
    from flux.security import SecurityContext as _SecurityContext  # noqa: F401
    _have_security = True
except ImportError:
    _have_security = False


def _maybe_sign(handle, sign, topic, payload):
    """``payload``, signed if ``sign`` (None: if the instance owner is someone else)."""
    if sign is None:
        try:
            sign = int(handle.attr_get("security.owner")) != os.getuid()
        except (OSError, ValueError):
            sign = False
    if not sign:
        return payload
    if not _have_security:
        raise OSError("flux-security is not available")
    token = _SecurityContext().sign_wrap(
        json.dumps({**payload, "topic": topic}, separators=(",", ":"))).decode("utf-8")
    return {**payload, "signature": token}


def command_create(command, label=None, cwd=None, env=None, opts=None):
    """An RFC 42 command object: ``cmdline``, ``cwd`` (default: the current one), ``env``
    (default: a copy of the current environment), ``opts``, ``channels`` and, if
    given, ``label``."""
    obj = {"cmdline": command,
           "cwd": os.getcwd() if cwd is None else cwd,
           "env": dict(os.environ) if env is None else env,
           "opts": {} if opts is None else opts,
           "channels": []}
    if label is not None:
        obj["label"] = label
    return obj


class SubprocessBackgroundRexecRPC(RPC):
    """What :func:`rexec_bg` returns: ``get_pid()``, ``get_rank()``."""

    def __init__(self, handle, *args, **kwargs):
        nodeid = kwargs.get("nodeid", FLUX_NODEID_ANY)
        self._rank = handle.get_rank() if nodeid == FLUX_NODEID_ANY else nodeid
        super().__init__(handle, *args, **kwargs)

    def get_pid(self):
        """The process id of the remote process."""
        return self.get()["pid"]

    def get_rank(self):
        """The rank it runs on."""
        return self._rank


def rexec_bg(handle, command, cwd=None, env=None, label=None, waitable=False,
             service="rexec", nodeid=FLUX_NODEID_ANY, sign=None):
    """Start ``command`` in the background on rank ``nodeid`` (a
    :class:`SubprocessBackgroundRexecRPC`)."""
    topic = f"{service}.exec"
    payload = {"cmd": command_create(command, label=label, cwd=cwd, env=env),
               "flags": SUBPROCESS_REXEC_WAITABLE if waitable else 0}
    payload = _maybe_sign(handle, sign, topic, payload)
    return SubprocessBackgroundRexecRPC(handle, topic=topic, nodeid=int(nodeid),
                                        payload=payload)


def _target(pid, label):
    if pid is None and label is None:
        raise ValueError("at least one of pid or label must be specified")
    if pid is not None and label is not None:
        raise ValueError("only one of pid or label may be specified")
    return {"pid": int(pid)} if pid is not None else {"pid": -1, "label": label}


def kill(handle, signum=15, pid=None, label=None, service="rexec", nodeid=FLUX_NODEID_ANY,
         sign=None):
    """Send ``signum`` to the process ``pid`` (or labeled ``label``); an RPC."""
    payload = {**_target(pid, label), "signum": int(signum)}
    topic = f"{service}.kill"
    payload = _maybe_sign(handle, sign, topic, payload)
    return handle.rpc(topic=topic, nodeid=int(nodeid), payload=payload)


class SubprocessWaitRPC(RPC):
    """What :func:`wait` returns: ``get_status()`` (a wait status), ``get_output()``
    (the RFC 42 I/O objects kept), ``stdout``/``stderr`` (their data as bytes)."""

    def get_status(self):
        return self.get()["status"]

    def get_output(self):
        return self.get().get("output", [])

    def _stream_bytes(self, stream):
        out = b""
        for io in self.get_output():
            if io.get("stream") != stream or io.get("data") is None:
                continue
            data = io["data"]
            if io.get("encoding") == "base64":
                out += base64.b64decode(data)
            else:
                out += data.encode("utf-8", errors="surrogateescape")
        return out

    @property
    def stdout(self):
        return self._stream_bytes("stdout")

    @property
    def stderr(self):
        return self._stream_bytes("stderr")


def wait(handle, pid=None, label=None, service="rexec", nodeid=FLUX_NODEID_ANY, sign=None):
    """Wait for the waitable process ``pid`` (or labeled ``label``) to exit."""
    topic = f"{service}.wait"
    payload = _maybe_sign(handle, sign, topic, _target(pid, label))
    return SubprocessWaitRPC(handle, topic=topic, nodeid=int(nodeid), payload=payload)


@dataclass
class Subprocess:
    """One process of ``rexec.list``: ``pid``, ``rank``, ``state`` (R running, Z exited
    and not yet waited for), ``label`` ("-" if none), ``cmd``."""

    pid: int
    rank: int
    state: str
    label: str
    cmd: str

    def __post_init__(self):
        if not self.label:
            self.label = "-"


class SubprocessListRPC(RPC):
    def get_processes(self):
        """The :class:`Subprocess` of each process listed."""
        resp = self.get()
        return [Subprocess(**p, rank=resp["rank"]) for p in resp["procs"]]


def list(handle, service="rexec", nodeid=FLUX_NODEID_ANY, sign=None):  # noqa: A001
    """The processes of a rank (a :class:`SubprocessListRPC`)."""
    topic = f"{service}.list"
    payload = _maybe_sign(handle, sign, topic, {})
    return SubprocessListRPC(handle, topic=topic, nodeid=int(nodeid), payload=payload)


__all__ = ["SUBPROCESS_REXEC_WAITABLE", "command_create", "rexec_bg", "kill", "wait",
           "list", "Subprocess", "SubprocessBackgroundRexecRPC", "SubprocessWaitRPC",
           "SubprocessListRPC"]
