"""sched-simple's request parsing and first-fit placement, checked by hand."""

import pytest

from fluxnb.runtime.job.jobspec import JobspecV1
from fluxnb.runtime.sched.simple import parse_request


def js(**kw):
    import json
    return json.loads(JobspecV1.from_command(["true"], **kw).dumps())


def test_counts_of_from_command():
    r = parse_request(js(num_tasks=4, cores_per_task=2))
    assert (r.nslots, r.cores, r.gpus, r.nnodes) == (4, 2, 0, None)
    r = parse_request(js(num_tasks=4, num_nodes=2, gpus_per_task=1))
    assert (r.nslots, r.cores, r.gpus, r.nnodes, r.slots_per_node) == (4, 1, 1, 2, 2)


def test_duration_and_exclusive():
    r = parse_request(js(num_nodes=2, num_tasks=2, exclusive=True, duration=90))
    assert r.exclusive and r.duration == 90


@pytest.mark.parametrize("resources,msg", [
    ([{"type": "slot", "count": 1, "label": "task", "with": [{"type": "memory", "count": 1}]}], "memory"),
    ([{"type": "slot", "count": 0, "label": "task", "with": [{"type": "core", "count": 1}]}], "count"),
    ([], "one vertex"),
])
def test_bad_requests_name_the_problem(resources, msg):
    with pytest.raises(ValueError, match=msg):
        parse_request({"resources": resources, "tasks": [], "attributes": {}})
