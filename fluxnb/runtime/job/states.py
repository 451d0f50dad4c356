"""Job states and the events that move a job between them (RFC 21), as a table.

The job manager applies each eventlog event through :func:`apply_event`; the
eventlog is therefore the job's whole story, and replaying it rebuilds the job.

Examples
--------
>>> job = Job(id=1, userid=0, urgency=16, t_submit=0.0)
>>> for name in ("validate", "depend", "priority", "alloc"):
...     _ = apply_event(job, {"timestamp": 1.0, "name": name, "context": {"priority": 16}})
>>> job.state
'RUN'
>>> apply_event(job, {"timestamp": 2.0, "name": "validate", "context": {}})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
fluxnb.runtime.job.states.IllegalTransition: job 1: event 'validate' is not allowed in state RUN
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

State = Literal["NEW", "DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP", "INACTIVE"]
# the names and bits of states and results live in a module of their own, which
# clients (the job API, `flux jobs`) import without this module's dataclass
from .statebits import (  # noqa: E402,F401 - re-exported
    RESULT_ABBREV, RESULT_BITS, STATE_ABBREV, STATE_BITS, STATES,
)
PENDING = ("DEPEND", "PRIORITY", "SCHED")
ACTIVE = ("NEW", "DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP")

URGENCY_HOLD = 0
URGENCY_DEFAULT = 16
URGENCY_EXPEDITE = 31
PRIORITY_MAX = 4294967295


class IllegalTransition(RuntimeError):
    """An event arrived that the job's state does not allow."""


@dataclass(slots=True)
class Job:
    """What the job manager knows of one job; rebuilt by replaying its eventlog."""

    id: int
    userid: int
    urgency: int
    t_submit: float
    state: State = "NEW"
    priority: int | None = None
    flags: int = 0
    jobspec: dict | None = None
    R: dict | None = None
    name: str = ""
    ntasks: int = 1
    nnodes: int | None = None
    dependencies: set = field(default_factory=set)
    exception: dict | None = None  # first fatal exception
    waitstatus: int | None = None
    t_depend: float | None = None
    t_priority: float | None = None
    t_sched: float | None = None
    t_run: float | None = None
    t_cleanup: float | None = None
    t_inactive: float | None = None
    alloc_pending: bool = False
    has_resources: bool = False
    start_pending: bool = False
    released: bool = False
    annotations: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)
    waitable: bool = False
    queue: str | None = None
    eventlog_len: int = 0
    pending_deps: tuple = ()
    kvs_dir: str = ""
    exec_running: bool = False
    cancel_sent: bool = False
    free_sent: bool = False

    @property
    def result(self) -> str | None:
        """COMPLETED, FAILED, CANCELED or TIMEOUT once the job is inactive."""
        if self.state != "INACTIVE":
            return None
        if self.exception is not None:
            kind = self.exception.get("type")
            if kind == "cancel":
                return "CANCELED"
            if kind == "timeout":
                return "TIMEOUT"
            return "FAILED"
        if self.waitstatus is None or self.waitstatus != 0:
            return "FAILED"
        return "COMPLETED"

    @property
    def success(self) -> bool:
        return self.result == "COMPLETED"

    @property
    def returncode(self) -> int | None:
        """Exit code as flux's JobInfo reports it.

        The highest task exit code; ``-signum`` if a task was killed by a signal;
        ``-128`` if the job ended with an exception before anything ran; None
        while the job is active.
        """
        if self.state != "INACTIVE":
            return None
        if self.waitstatus is None:
            return -128
        ws = self.waitstatus
        if ws & 0x7F:
            return -(ws & 0x7F)
        return (ws >> 8) & 0xFF


# -- transition functions: each mutates the job for one event and returns it ------------
def _to(state: State) -> Callable[[Job, dict], None]:
    def go(job: Job, ev: dict) -> None:
        job.state = state
        stamp = f"t_{state.lower()}"
        if hasattr(job, stamp):
            setattr(job, stamp, ev["timestamp"])
    return go


def _priority(job: Job, ev: dict) -> None:
    job.priority = int(ev["context"].get("priority", 0))
    if job.state == "PRIORITY":
        _to("SCHED")(job, ev)


def _urgency(job: Job, ev: dict) -> None:
    job.urgency = int(ev["context"]["urgency"])


def _exception(job: Job, ev: dict) -> None:
    ctx = ev["context"]
    if int(ctx.get("severity", 0)) != 0:
        return
    if job.exception is None:
        job.exception = dict(ctx)
    if job.state != "CLEANUP":
        # RFC 21: a fatal exception moves any active job to CLEANUP; a running
        # job's tasks are then killed and its finish still arrives in CLEANUP
        _to("CLEANUP")(job, ev)


def _alloc(job: Job, ev: dict) -> None:
    job.has_resources = True
    job.alloc_pending = False
    _to("RUN")(job, ev)


def _finish(job: Job, ev: dict) -> None:
    job.waitstatus = int(ev["context"].get("status", 0))
    if job.state == "RUN":
        _to("CLEANUP")(job, ev)


def _release(job: Job, ev: dict) -> None:
    if ev["context"].get("final"):
        job.released = True


def _free(job: Job, ev: dict) -> None:
    job.has_resources = False


def _dependency_add(job: Job, ev: dict) -> None:
    job.dependencies.add(ev["context"]["description"])


def _dependency_remove(job: Job, ev: dict) -> None:
    job.dependencies.discard(ev["context"]["description"])


def _memo(job: Job, ev: dict) -> None:
    job.memo.update(ev["context"])


def _nothing(job: Job, ev: dict) -> None:
    pass


_ANY_ACTIVE = ACTIVE
#: event name -> (states it may arrive in, transition function)
TRANSITIONS: dict[str, tuple[tuple[str, ...], Callable[[Job, dict], None]]] = {
    "submit": (("NEW",), _nothing),
    "validate": (("NEW",), _to("DEPEND")),
    "invalidate": (("NEW",), _to("INACTIVE")),
    "dependency-add": (("DEPEND",), _dependency_add),
    "dependency-remove": (("DEPEND",), _dependency_remove),
    "depend": (("DEPEND",), _to("PRIORITY")),
    "priority": (("PRIORITY", "SCHED", "RUN", "CLEANUP"), _priority),
    "urgency": (("DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP", "NEW"), _urgency),
    "alloc": (("SCHED",), _alloc),
    "start": (("RUN", "CLEANUP"), _nothing),
    "finish": (("RUN", "CLEANUP"), _finish),
    "release": (("RUN", "CLEANUP"), _release),
    "free": (("RUN", "CLEANUP"), _free),
    "clean": (("CLEANUP",), _to("INACTIVE")),
    # posted on restart to a job that was waiting for the scheduler: its priority
    # is computed again and it is queued anew (flux-core's job manager does this)
    "flux-restart": (("SCHED",), _to("PRIORITY")),
    "exception": (_ANY_ACTIVE, _exception),
    "memo": (_ANY_ACTIVE, _memo),
    "annotations": (_ANY_ACTIVE, _nothing),
    "debug": (_ANY_ACTIVE, _nothing),
}


def apply_event(job: Job, event: dict[str, Any]) -> Job:
    """Apply one eventlog entry to ``job``; raise IllegalTransition if not allowed."""
    name = event["name"]
    rule = TRANSITIONS.get(name)
    if rule is None:
        raise IllegalTransition(f"job {job.id}: unknown event '{name}'")
    allowed, fn = rule
    if job.state not in allowed:
        raise IllegalTransition(f"job {job.id}: event '{name}' is not allowed in state {job.state}")
    fn(job, event)
    job.eventlog_len += 1
    return job


def replay(job_id: int, events: list[dict]) -> Job:
    """Rebuild a job from its eventlog (the first event must be ``submit``)."""
    if not events or events[0]["name"] != "submit":
        raise IllegalTransition(f"job {job_id}: eventlog does not start with submit")
    ctx = events[0]["context"]
    job = Job(id=job_id, userid=ctx.get("userid", 0), urgency=ctx.get("urgency", URGENCY_DEFAULT),
              t_submit=events[0]["timestamp"], flags=ctx.get("flags", 0))
    for ev in events:
        apply_event(job, ev)
    return job
