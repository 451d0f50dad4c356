"""``flux.job.stats``: job counts by state and result (``job-list.job-stats``)."""

from flux.rpc import RPC


class JobStats:
    """Job statistics of an instance, all -1 until ``update()``/``update_sync()``."""

    class QueueStats:
        def __init__(self, stats=None):
            pass

    def __init__(self, handle, queue=None):
        self.handle = handle
        self.queue = queue
        self.callback = None
        self.cb_kwargs = {}
        for attr in ("depend", "priority", "sched", "run", "cleanup", "inactive", "active",
                     "pending", "running", "successful", "failed", "canceled", "timeout",
                     "inactive_purged"):
            setattr(self, attr, -1)

    def _update_cb(self, rpc):
        resp = rpc.get()
        stats = resp
        if self.queue:
            stats = next((q for q in resp.get("queues", []) if q.get("name") == self.queue), {})
        for state, count in (stats.get("job_states") or {}).items():
            setattr(self, state, count)
        for attr in ("successful", "failed", "canceled", "timeout", "inactive_purged"):
            setattr(self, attr, stats.get(attr, 0))
        self.pending = self.depend + self.priority + self.sched
        self.running = self.run + self.cleanup
        self.active = self.total - self.inactive if hasattr(self, "total") else \
            self.pending + self.running
        if self.callback:
            self.callback(self, **self.cb_kwargs)

    def _query(self):
        return RPC(self.handle, "job-list.job-stats", {})

    def update(self, callback=None, **kwargs):
        """Fetch the stats asynchronously (the reactor runs ``callback(stats, **kwargs)``)."""
        if callback is not None:
            self.callback = callback
            self.cb_kwargs = kwargs
        self._query().then(self._update_cb)

    def update_sync(self):
        self._update_cb(self._query())
        return self


__all__ = ["JobStats"]
