"""``flux.job.kvslookup``: look up keys of a job's KVS directory (jobspec, R, eventlog...)."""

import json

from flux.future import WaitAllFuture
from flux.job.JobID import JobID
from flux.rpc import RPC

import flux.constants as _c


def _lookup(flux_handle, jobid, key):
    import base64
    val = RPC(flux_handle, "kvs.lookup", {"key": f"{JobID(jobid).kvs}.{key}"}, 0).get()["val"]
    return base64.b64decode(val["data"]).decode("utf-8") if val.get("data") else ""


def _current(flux_handle, jobid, key, text):
    """Apply the eventlog's updates to the jobspec or R, as the current flag asks."""
    events = [json.loads(line) for line in _lookup(flux_handle, jobid, "eventlog").splitlines() if line]
    obj = json.loads(text)
    for ev in events:
        ctx = ev.get("context") or {}
        if key == "jobspec" and ev.get("name") == "jobspec-update":
            for path, value in ctx.items():
                d = obj
                *parts, last = path.split(".")
                for p in parts:
                    d = d.setdefault(p, {})
                d[last] = value
        elif key == "R" and ev.get("name") == "resource-update":
            for k, value in ctx.items():
                obj.setdefault("execution", {})[k] = value
    return json.dumps(obj)


class JobInfoLookupRPC(WaitAllFuture):
    """The values of some keys of one job: ``get()`` as text, ``get_decode()`` decoded."""

    def __init__(self, flux_handle, jobid, keys, flags=0):
        super().__init__()
        self.flux_handle, self.jobid, self.keys, self.flags = flux_handle, JobID(jobid), keys, flags

    def _poll(self):
        return True

    def get(self):
        data = {"id": int(self.jobid)}
        for key in self.keys:
            text = _lookup(self.flux_handle, self.jobid, key)
            if self.flags & _c.FLUX_JOB_LOOKUP_CURRENT and key in ("jobspec", "R"):
                text = _current(self.flux_handle, self.jobid, key, text)
            data[key] = text
        return data

    def get_decode(self):
        data = self.get()
        for key in self.keys:
            if key in ("jobspec", "R") or key.endswith("eventlog") is False:
                try:
                    data[key] = json.loads(data[key])
                except (ValueError, TypeError):
                    pass
        return data


def job_info_lookup(flux_handle, jobid, keys=["jobspec"], flags=0):
    return JobInfoLookupRPC(flux_handle, jobid, list(keys), flags)


def job_kvs_lookup(flux_handle, jobid, keys=["jobspec"], decode=True, original=False,
                   base=False):
    """A dict of the job's ``keys`` (``id`` too), or None if the job has none of them."""
    keys = list(keys)
    if original and "jobspec" in keys:
        keys = ["J" if k == "jobspec" else k for k in keys]
    flags = 0 if base else _c.FLUX_JOB_LOOKUP_CURRENT
    rpc = job_info_lookup(flux_handle, jobid, keys, flags)
    try:
        data = rpc.get_decode() if decode else rpc.get()
    except FileNotFoundError:
        return None
    if original and "J" in data:
        J = data.pop("J")
        data["jobspec"] = json.loads(J) if decode else J
    return data


class JobKVSLookup:
    """Look up ``keys`` of several jobs: ``data()`` is a list of dicts."""

    def __init__(self, flux_handle, ids=[], keys=["jobspec"], decode=True, original=False,
                 base=False):
        self.handle, self.ids, self.keys = flux_handle, list(map(JobID, ids)), list(keys)
        self.decode, self.original, self.base = decode, original, base
        self.errors = []

    def data(self):
        out = []
        for jobid in self.ids:
            try:
                d = job_kvs_lookup(self.handle, jobid, self.keys, self.decode, self.original,
                                   self.base)
            except OSError as exc:
                self.errors.append(f"JobID {jobid.orig}: {exc.strerror}")
                continue
            if d is None:
                self.errors.append(f"JobID {jobid.orig} unknown")
            else:
                out.append(d)
        return out


__all__ = ["JobInfoLookupRPC", "job_info_lookup", "job_kvs_lookup", "JobKVSLookup"]
