"""The live widgets against a real instance: rows, filters, details, cancel, resources, progress.

Every wait here is a timeout loop on the widget's own data: the data must arrive by
the instance's ``job-state`` events, through the shared event thread.
"""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from fluxnb import Flux  # noqa: E402
from fluxnb.job import JobID, JobspecV1, cancel, result, submit  # noqa: E402
from fluxnb.widgets import JobBrowser, ResourceBrowser, SubmitProgress  # noqa: E402
from fluxnb.widgets.events import feed  # noqa: E402
from tests.conftest import wait_for  # noqa: E402


def test_jobspec(duration: str = "0.01s", command=("sleep", "0.2")) -> JobspecV1:
    js = JobspecV1.from_command(list(command))
    js.environment = dict(os.environ)
    js.setattr("system.exec.test.run_duration", duration)
    return js


test_jobspec.__test__ = False  # a helper, not a test


def real_jobspec(command) -> JobspecV1:
    js = JobspecV1.from_command(list(command))
    js.environment = dict(os.environ)
    return js


@pytest.fixture
def browser(h):
    jb = JobBrowser(handle=h)
    # loaded, and the feed's first call (a catch-up reload) made
    wait_for(lambda: jb.loaded and jb.subscription.calls >= 1, what="the browser's jobs loaded")
    yield jb
    jb.close()


@pytest.fixture
def resources(h):
    rb = ResourceBrowser(handle=h)
    yield rb
    rb.close()


# -- JobBrowser -------------------------------------------------------------------------
def test_rows_appear_and_reach_cd_by_events(h, browser):
    ids = [submit(h, test_jobspec()) for _ in range(3)]
    wait_for(lambda: all(browser.status(i) == "CD" for i in ids), what="3 jobs to show CD")
    texts = [r[0] for r in browser.rows()]
    assert all(JobID(i).f58 in texts for i in ids)
    assert browser.subscription is not None and browser.subscription.calls >= 1
    assert browser.subscription.error is None
    # the grid's window has one row per job: id, columns, colour class
    rows = {r[0]: r for r in browser.table.window["rows"]}
    first = rows[JobID(ids[0]).f58]
    assert first[4:6] == ["INACTIVE", "COMPLETED"] and first[-1] == "CD"
    assert browser.table.counts["CD"] >= 3


def test_filter(h, browser):
    done = submit(h, test_jobspec())
    result(h, done)
    running = submit(h, test_jobspec("60s"))
    wait_for(lambda: browser.status(running) == "R", what="a job in R")
    wait_for(lambda: browser.status(done) == "CD", what="a job in CD")
    try:
        browser.filter.value = "running"
        ids = _grid_ids(browser)
        assert running.f58 in ids and done.f58 not in ids
        browser.filter.value = "inactive"
        ids = _grid_ids(browser)
        assert done.f58 in ids and running.f58 not in ids
        browser.filter.value = "completed"
        assert all(r[2] == "CD" for r in browser.rows())
        assert all(r[-1] == "CD" for r in browser.table.window["rows"])
        browser.filter.value = "all"
        ids = _grid_ids(browser)
        assert {done.f58, running.f58} <= set(ids)
    finally:
        cancel(h, running)
        result(h, running)


def _grid_ids(browser) -> list[str]:
    """The F58 ids of the rows the grid was sent."""
    return [r[0] for r in browser.table.window["rows"]]


def test_unknown_filter_is_a_clear_error(h):
    with pytest.raises(ValueError, match="unknown filter 'bogus'"):
        JobBrowser(handle=h, filter="bogus")


def test_select_shows_eventlog_R_and_output(h, browser):
    jobid = submit(h, real_jobspec(["sh", "-c", "echo hello-widgets; echo oops >&2"]))
    result(h, jobid)
    wait_for(lambda: browser.status(jobid) == "CD", what="the job to show CD")
    browser.table.selected = JobID(jobid).f58  # what a click on the row does
    assert browser.selected == jobid
    d = browser.details
    assert "submit" in d["eventlog"] and "clean" in d["eventlog"]
    assert '"R_lite"' in d["R"] and "node" in d["R"]
    assert '"command"' in d["jobspec"] and "echo hello-widgets" in d["jobspec"]
    assert "0: hello-widgets" in d["output"] and "0! oops" in d["output"]
    assert browser.tabs.titles == ("eventlog", "R", "jobspec", "output")
    assert "hello-widgets" in browser.tabs.children[3].value
    assert browser.cancel_button.disabled     # nothing to cancel once inactive


def test_cancel_button_cancels_the_selected_running_job(h, browser):
    jobid = submit(h, test_jobspec("60s"))
    wait_for(lambda: browser.status(jobid) == "R", what="the job to run")
    browser.select(jobid)
    assert not browser.cancel_button.disabled
    browser.cancel_button.click()
    assert result(h, jobid)["result"] == "CANCELED"
    wait_for(lambda: browser.status(jobid) == "CA", what="the row to show CA")
    assert "canceled" in browser.message.value
    # the details follow the selected job by events too
    wait_for(lambda: "clean" in browser.details["eventlog"], what="the eventlog to reach clean")


def test_grid_sorts_by_each_column(h, browser):
    a = submit(h, test_jobspec(command=("true",)), )
    b = submit(h, real_jobspec(["sh", "-c", "true"]))
    for jobid in (a, b):
        result(h, jobid)
    wait_for(lambda: browser.status(b) == "CD", what="the jobs to show CD")
    browser.table.sort_by = "name"               # a click on NAME
    browser.table.descending = False
    names = [r[3] for r in browser.table.window["rows"]]
    assert names == sorted(names) and {"sh", "true"} <= set(names)
    browser.table.descending = True              # a second click
    names = [r[3] for r in browser.table.window["rows"]]
    assert names == sorted(names, reverse=True)
    browser.table.sort_by = "id"
    ids = [int(i) for i in browser.view_ids()]
    assert ids == sorted(ids, reverse=True)
    with pytest.raises(Exception, match="cannot sort by 'bogus'"):
        browser.table.sort_by = "bogus"
    with pytest.raises(ValueError, match="cannot sort by 'bogus'"):
        JobBrowser(handle=h, sort_by="bogus")


def test_text_filter_and_counts(h, browser):
    js = test_jobspec()
    js.setattr("system.job.name", "needle-in-the-grid")
    needle = submit(h, js)
    other = submit(h, test_jobspec())
    for jobid in (needle, other):
        result(h, jobid)
    wait_for(lambda: browser.status(other) == "CD", what="the jobs to show CD")
    browser.search.value = "NEEDLE-in"            # case does not matter
    assert _grid_ids(browser) == [JobID(needle).f58]
    assert browser.table.window["total"] == 1
    browser.search.value = JobID(other).f58
    assert _grid_ids(browser) == [JobID(other).f58]
    browser.search.value = ""
    counts = browser.table.counts
    assert set(counts) == {"PD", "R", "CD", "F", "CA", "TO"}
    assert sum(counts.values()) == len(browser.jobs) and counts["CD"] >= 2


def test_grid_sends_one_page_and_scrolls(h):
    ids = [submit(h, test_jobspec("0s")) for _ in range(150)]
    for jobid in ids:
        result(h, jobid)
    jb = JobBrowser(handle=h, sort_by="id")
    try:
        wait_for(lambda: jb.loaded, what="all jobs loaded")
        grid = jb.table
        assert grid.window["total"] >= 150
        assert len(grid.window["rows"]) == grid.page_size < 150
        view = [i.f58 for i in jb.view_ids()]
        grid.offset = 70                          # what scrolling does
        assert grid.window["offset"] == 70
        assert _grid_ids(jb) == view[70:70 + grid.page_size]
        grid.offset = 10 ** 6                     # past the end: the last page
        assert grid.window["offset"] == len(view) - grid.page_size
        assert _grid_ids(jb)[-1] == view[-1]
    finally:
        jb.close()


def test_first_render_shows_the_newest_then_loads_the_rest(h, monkeypatch):
    ids = [submit(h, test_jobspec("0s")) for _ in range(12)]
    for jobid in ids:
        result(h, jobid)
    asked = []
    real = JobBrowser._load
    monkeypatch.setattr(JobBrowser, "_load", lambda self, hh, n=None: (asked.append(n), real(self, hh, n)))
    monkeypatch.setattr(JobBrowser, "FIRST_PAGE", 5)
    jb = JobBrowser(handle=h)
    try:
        assert asked[0] == 5                      # the first render waited for 5 records only
        wait_for(lambda: jb.loaded, what="the rest of the jobs")
        assert asked[1] is None                   # then all of them, from the event thread
        assert {int(i) for i in ids} <= set(jb.jobs)
        assert jb.table.window["total"] == len(jb.jobs) >= 12
        assert "loading" not in jb.summary.value
    finally:
        jb.close()


def test_events_fetch_only_the_jobs_they_name(h, browser, monkeypatch):
    calls = []
    real = browser._load
    monkeypatch.setattr(browser, "_load", lambda hh: (calls.append(1), real(hh)))
    jobid = submit(h, test_jobspec())
    wait_for(lambda: browser.status(jobid) == "CD", what="the job to show CD")
    assert calls == []                            # no whole-list reload for a few events


def test_selected_running_job_output_is_live(h, browser):
    jobid = submit(h, real_jobspec(["sh", "-c", "echo first-live; sleep 30"]))
    wait_for(lambda: browser.status(jobid) == "R", what="the job to run")
    browser.select(jobid)
    try:
        wait_for(lambda: "0: first-live" in browser.details["output"], timeout=10,
                 what="the running job's output in the pane")
        assert "first-live" in browser.tabs.children[3].value
        assert browser.status(jobid) == "R"        # seen while it still runs
    finally:
        cancel(h, jobid)
        result(h, jobid)


def test_cancel_without_selection_says_so(h, browser):
    assert browser.cancel_selected() is False
    assert "select a job" in browser.message.value


def test_default_handle_is_flux_uri(instance, monkeypatch):
    monkeypatch.setenv("FLUX_URI", instance.uri)
    jb = JobBrowser()
    try:
        assert jb.uri == instance.uri
    finally:
        jb.close()


# -- ResourceBrowser ----------------------------------------------------------------------
def test_resource_counts_rise_and_fall(h, resources):
    total = sum(resources.counts["core"].values())
    assert total == 8 and resources.counts["core"]["allocated"] == 0
    js = JobspecV1.from_command(["sleep", "60"], num_tasks=4, cores_per_task=1)
    js.environment = dict(os.environ)
    js.setattr("system.exec.test.run_duration", "60s")
    jobid = submit(h, js)
    wait_for(lambda: resources.counts["core"]["allocated"] == 4, what="4 cores allocated")
    assert "4 allocated" in resources.summary.value
    colors = list(resources.figure.data[0].marker.colors)
    assert colors.count("#ff9800") == 4
    cancel(h, jobid)
    wait_for(lambda: resources.counts["core"]["allocated"] == 0, what="cores freed")
    assert resources.counts["core"]["free"] == 8


def test_resource_treemap_toggle(h, resources):
    assert resources.figure.data[0].type == "sunburst"
    resources.kind.value = "treemap"
    assert resources.figure.data[0].type == "treemap"
    labels = list(resources.figure.data[0].labels)
    assert "cluster" in labels and "node0" in labels and "core0" in labels
    with pytest.raises(ValueError, match="kind must be"):
        ResourceBrowser(handle=h, kind="pie")


# -- SubmitProgress -------------------------------------------------------------------------
def test_submit_progress_follows_jobs_to_completion(h):
    ids = [submit(h, test_jobspec()) for _ in range(20)]
    sp = SubmitProgress(ids, handle=h)
    try:
        assert sp.wait(30), sp.to_text()
        c = sp.counts()
        assert c == {"submitted": 20, "pending": 0, "running": 0, "complete": 20}
        assert sp.bar.value == 20 and sp.bar.max == 20 and sp.bar.bar_style == "success"
        assert "20/20 complete" in sp.to_text() and "jobs/s" in sp.to_text()
        assert sp.rate() > 0
    finally:
        sp.close()


def test_submit_progress_add_while_submitting(h):
    sp = SubmitProgress(handle=h)
    try:
        for _ in range(5):
            sp.add(submit(h, test_jobspec()))
        assert sp.counts()["submitted"] == 5
        assert sp.wait(30)
        canceled = submit(h, test_jobspec("60s"))
        sp.add(canceled)
        assert not sp.done
        cancel(h, canceled)
        assert sp.wait(30)
        wait_for(lambda: sp.failed == 1, what="the canceled job to count as failed")
        assert "1 failed" in sp.to_text() and sp.bar.bar_style == "danger"
    finally:
        sp.close()


# -- static fallbacks ----------------------------------------------------------------------
def test_static_fallbacks(h, browser, resources):
    jobid = submit(h, test_jobspec())
    wait_for(lambda: browser.status(jobid) == "CD", what="the job to show CD")
    bundle = browser._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert JobID(jobid).f58 in bundle["text/plain"] and "ST" in bundle["text/plain"]
    assert "<table" in bundle["text/html"] and JobID(jobid).f58 in bundle["text/html"]

    # the ResourceBrowser follows the same events on its own: it may redraw a moment later
    wait_for(lambda: "core: 8 free" in resources._repr_mimebundle_()["text/plain"],
             what="the ResourceBrowser to show the job's core free again")
    rb = resources._repr_mimebundle_()
    assert "core: 8 free" in rb["text/plain"] and "node3" in rb["text/plain"]
    assert "plotly" in rb["text/html"] and "cdn.plot.ly" in rb["text/html"]
    assert "<table" in rb["text/html"]

    sp = SubmitProgress([jobid], handle=h)
    try:
        assert sp.wait(10)
        b = sp._repr_mimebundle_()
        assert "1/1 complete" in b["text/plain"] and "1/1 complete" in b["text/html"]
    finally:
        sp.close()


# -- the event thread ----------------------------------------------------------------------
def test_one_event_thread_coalesces_bursts(h, browser, resources):
    import threading
    names = [t.name for t in threading.enumerate() if t.name == "fluxnb-widget-events"]
    assert len(names) == 1
    calls = browser.subscription.calls
    ids = [submit(h, test_jobspec("0s")) for _ in range(100)]
    wait_for(lambda: all(browser.status(i) == "CD" for i in ids), timeout=60,
             what="100 jobs to show CD")
    # 100 jobs make ~600 transitions; redraws are throttled to ~5/s and coalesced
    assert browser.subscription.calls - calls < 100, browser.subscription.calls - calls


def test_event_thread_does_not_spin(h, browser, resources):
    sp = SubmitProgress(handle=h)
    try:
        time.sleep(0.5)                       # let the first refreshes settle
        wakeups = feed().wakeups
        cpu = time.process_time()
        time.sleep(1.0)
        used = time.process_time() - cpu
        assert used < 0.2, f"the process used {used:.3f}s of CPU in 1s of idleness"
        assert feed().wakeups - wakeups <= 2
    finally:
        sp.close()


def test_closed_widgets_release_the_feed_handle(instance):
    with Flux(instance.uri) as h:
        jb = JobBrowser(handle=h)
        wait_for(lambda: jb.subscription.calls >= 1, what="the first refresh")
        sub = jb.subscription
        jb.close()
        assert sub.closed
        wait_for(lambda: instance.uri not in feed()._conns or
                 all(s is not sub for s in feed()._conns[instance.uri].subs),
                 what="the feed to drop the widget")
