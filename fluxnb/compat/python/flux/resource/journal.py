"""``flux.resource.journal``: ``ResourceJournalConsumer``, the resource service's journal
(``resource.journal``): the instance's resource events (restart, resource-define with
its R, online, offline, drain, undrain...), history first."""

from flux.abc import JournalConsumerBase, JournalEventBase


class ResourceJournalEvent(JournalEventBase):
    """A resource event: ``name``, ``timestamp``, ``context``, and ``R`` (the instance's
    R) for ``resource-define``."""

    def __init__(self, event, R=None):
        super().__init__(event)
        self.R = R


class ResourceJournalConsumer(JournalConsumerBase):
    """Consume the resource journal (see :class:`flux.abc.JournalConsumerBase`); the
    history is always given."""

    SENTINEL_EVENT = ResourceJournalEvent({})

    def __init__(self, flux_handle, since=0.0, include_sentinel=False):
        super().__init__(flux_handle, "resource.journal", full=True, since=since,
                         include_sentinel=include_sentinel)

    def process_response(self, resp):
        return {"R": resp.get("R")}

    def create_event(self, entry, R=None):
        return ResourceJournalEvent(entry, R)


__all__ = ["ResourceJournalConsumer", "ResourceJournalEvent"]
