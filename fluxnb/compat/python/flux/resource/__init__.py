"""``flux.resource``: resource sets (RFC 20), counts (RFC 45) and the
instance's resources (``resource_list``, ``resource_status``)."""

from flux.resource.ResourceSet import ResourceSet
from flux.resource.ResourceCount import ResourceCount
from flux.resource.list import SchedResourceList, resource_list
from flux.resource.status import ResourceStatus, resource_status
from flux.resource.journal import ResourceJournalConsumer, ResourceJournalEvent
from flux.resource.Rv1Pool import (
    InfeasibleRequest, InsufficientResources, ResourceRequest, Rv1Pool,
)

__all__ = ["ResourceSet", "ResourceCount", "SchedResourceList", "resource_list",
           "ResourceStatus", "resource_status", "Rv1Pool", "ResourceRequest",
           "InfeasibleRequest", "InsufficientResources", "ResourceJournalConsumer",
           "ResourceJournalEvent"]
