"""Jobspec (RFC 14) and JobspecV1 (RFC 25): conformance, factories, setters."""

from __future__ import annotations

import copy
import datetime
import io
import json
import os
import pathlib
from pathlib import Path

import pytest
import yaml

from fluxnb.job import Jobspec, JobspecV1, validate
from fluxnb.runtime.job.jobspec import JobspecError, load_yaml


def _conformance() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists():
            return parent.parent / "shared" / "conformance"
    raise RuntimeError("repository root not found")


JOBSPECS = _conformance() / "jobspec"


def _files(folder: str) -> list[Path]:
    files = sorted((JOBSPECS / folder).glob("*.yaml"))
    assert files, f"no conformance files in {folder}"
    return files


def _params(folder: str):
    return pytest.mark.parametrize("path", _files(folder), ids=lambda p: p.name)


# -- conformance: one test per file ----------------------------------------


@_params("valid")
def test_valid_canonical(path):
    validate(load_yaml(path.read_text()))
    Jobspec.from_yaml_file(path)


@_params("valid_v1")
def test_valid_v1(path):
    validate(load_yaml(path.read_text()), version=1)
    JobspecV1.from_yaml_file(path)
    Jobspec.from_yaml_file(path)  # every V1 jobspec is a canonical one


@_params("invalid")
@pytest.mark.parametrize("cls", [Jobspec, JobspecV1])
def test_invalid_rejected_by_both(path, cls):
    with pytest.raises(ValueError) as exc:
        cls.from_yaml_file(path)
    assert ": " in str(exc.value)  # "<path>: <rule>"


@_params("invalid_v1")
def test_invalid_v1_rejected_by_v1(path):
    with pytest.raises(ValueError):
        validate(load_yaml(path.read_text()), version=1)
    with pytest.raises(ValueError):
        JobspecV1.from_yaml_file(path)


def test_invalid_yaml_reports_line():
    with pytest.raises(ValueError, match=r"invalid YAML at line 1, column \d+"):
        Jobspec.from_yaml_file(JOBSPECS / "invalid" / "invalid_yaml1.yaml")


# -- error messages name the path and the rule -----------------------------

V1_BASE = {
    "version": 1,
    "resources": [{"type": "slot", "count": 1, "label": "task",
                   "with": [{"type": "core", "count": 1}]}],
    "tasks": [{"command": ["app"], "slot": "task", "count": {"per_slot": 1}}],
    "attributes": {"system": {"duration": 0}},
}


def _js(**changes):
    js = copy.deepcopy(V1_BASE)
    js.update(changes)
    return js


def _error(js, version=None) -> str:
    with pytest.raises(JobspecError) as exc:
        validate(js, version=version)
    assert isinstance(exc.value, ValueError)
    return str(exc.value)


def test_base_is_valid():
    validate(V1_BASE)
    validate(V1_BASE, version=1)


def test_error_nested_count():
    js = _js(resources=[{"type": "node", "count": 1, "with": [
        {"type": "slot", "count": 1, "label": "task",
         "with": [{"type": "gpu", "count": 1}, {"type": "core", "count": 0}]}]}])
    assert _error(js) == "resources[0].with[0].with[1].count: must be >= 1"
    js = _js(resources=[{"type": "slot", "count": 1, "label": "task",
                         "with": [{"type": "gpu", "count": 0}, {"type": "core", "count": 0}]}])
    assert _error(js) == "resources[0].with[1].count: must be >= 1"


@pytest.mark.parametrize("command", ["app", [], [1, 2], None])
def test_error_command(command):
    js = _js(tasks=[{"command": command, "slot": "task", "count": {"per_slot": 1}}])
    assert _error(js) == "tasks[0].command: must be a non-empty list of strings"


def test_error_version_v1():
    assert _error(_js(version=2), version=1) == "version: must be 1"
    validate(_js(version=2))  # fine canonically


def test_error_missing_key_and_extra_key():
    js = _js()
    del js["tasks"]
    assert _error(js) == "tasks: is required"
    assert _error(_js(foo=1)).startswith("foo: unknown top-level key")


def test_error_duration_types():
    js = _js(attributes={"system": {"duration": "1h"}})
    assert _error(js) == "attributes.system.duration: must be a number of seconds"
    js = _js(attributes={"system": {"duration": -1}})
    assert _error(js).startswith("attributes.system.duration: must be a finite number >= 0")
    js = _js(attributes={"system": {}})
    assert _error(js, version=1) == "attributes.system.duration: is required in version 1"
    validate(js)  # duration is optional canonically


@pytest.mark.parametrize(
    "system, path",
    [
        ({"environment": ["A=1"]}, "attributes.system.environment"),
        ({"environment": {"A": 1}}, "attributes.system.environment.A"),
        ({"cwd": 5}, "attributes.system.cwd"),
        ({"queue": ["q"]}, "attributes.system.queue"),
        ({"shell": {"options": []}}, "attributes.system.shell.options"),
        ({"job": {"name": 3}}, "attributes.system.job.name"),
        ({"constraints": {"properties": "x"}}, "attributes.system.constraints.properties"),
        ({"constraints": {"bogus": []}}, "attributes.system.constraints.bogus"),
        ({"dependencies": [{"scheme": "afterok"}]}, "attributes.system.dependencies[0].value"),
    ],
)
def test_error_system_attribute_types(system, path):
    system = {"duration": 0, **system}
    assert _error(_js(attributes={"system": system})).startswith(path + ": ")


def test_system_attributes_accepted():
    system = {
        "duration": 60.0,
        "environment": {"HOME": "/home/flux", "UNSET": None},
        "cwd": "/tmp",
        "queue": "batch",
        "shell": {"options": {"verbose": 1}},
        "job": {"name": "x"},
        "constraints": {"and": [{"properties": ["amd"]}, {"not": [{"hostlist": ["n[1-2]"]}]}]},
        "dependencies": [{"scheme": "afterok", "value": "fNH"}],
        "anything-else": [1, 2],  # unknown system keys only warn (RFC 14)
    }
    validate(_js(attributes={"system": system, "user": {"mine": 1}}), version=1)


@pytest.mark.parametrize(
    "count",
    [{"min": 2}, {"min": 1, "max": 8, "operator": "*", "operand": 2}, "1-4", "2+", "4,9,16"],
)
def test_canonical_count_forms(count):
    js = _js(resources=[{"type": "slot", "count": count, "label": "task",
                         "with": [{"type": "core", "count": 1}]}])
    validate(js)
    assert _error(js, version=1) == "resources[0].count: must be an integer in version 1"


@pytest.mark.parametrize(
    "resources, message",
    [
        ([{"type": "node", "count": 1, "with": [
            {"type": "slot", "count": 1, "label": "task", "with": [{"type": "core", "count": 1}]},
            {"type": "core", "count": 1}]}],
         "resources[0].with: must hold exactly one slot in version 1"),
        ([{"type": "slot", "count": 1, "label": "task", "with": [{"type": "gpu", "count": 1}]}],
         "resources[0].with: must include a core in version 1"),
        ([{"type": "slot", "count": 1, "label": "task", "with": [
            {"type": "core", "count": 1}, {"type": "core", "count": 1}]}],
         "resources[0].with[1].type: core appears twice"),
        ([{"type": "slot", "count": 1, "label": "a", "with": [{"type": "core", "count": 1}]},
          {"type": "slot", "count": 1, "label": "b", "with": [{"type": "core", "count": 1}]}],
         "resources: must have exactly one vertex (node or slot) in version 1"),
        ([{"type": "node", "count": 1, "with": [{"type": "core", "count": 1}]}],
         "resources[0].with[0].type: must be 'slot' here in version 1 "
         "(node>slot>core[,gpu] or slot>core[,gpu])"),
    ],
)
def test_v1_resource_shapes(resources, message):
    js = _js(resources=resources)
    assert _error(js, version=1) == message


def test_v1_task_rules():
    task = V1_BASE["tasks"][0]
    assert _error(_js(tasks=[task, task]), version=1) == \
        "tasks: must have exactly one task in version 1"
    js = _js(tasks=[{**task, "count": {"per_slot": 2}}])
    validate(js)
    assert _error(js, version=1) == "tasks[0].count.per_slot: must be 1 in version 1"
    validate(_js(tasks=[{**task, "count": {"total": 7}}]), version=1)


def test_v1_gpu_count_zero_allowed():
    js = _js(resources=[{"type": "slot", "count": 1, "label": "task",
                         "with": [{"type": "core", "count": 1}, {"type": "gpu", "count": 0}]}])
    validate(js, version=1)


def test_duplicate_labels_rejected():
    js = _js(resources=[{"type": "slot", "count": 1, "label": "x", "with": [
        {"type": "slot", "count": 1, "label": "x", "with": [{"type": "core", "count": 1}]}]}])
    assert _error(js) == "resources[0].with[0].label: label 'x' is used more than once"


def test_validate_accepts_jobspec_object_and_text():
    js = JobspecV1(**copy.deepcopy(V1_BASE))
    validate(js, version=1)
    validate(json.dumps(V1_BASE), version=1)
    with pytest.raises(ValueError, match="unsupported jobspec version"):
        validate(V1_BASE, version=2)


def test_constructor_validates():
    with pytest.raises(ValueError, match="version: must be 1"):
        JobspecV1(V1_BASE["resources"], V1_BASE["tasks"], V1_BASE["attributes"], version=2)
    with pytest.raises(ValueError, match="attributes: must be a mapping"):
        Jobspec(V1_BASE["resources"], V1_BASE["tasks"], None, 1)


def test_from_yaml_stream_and_non_mapping():
    js = JobspecV1.from_yaml_stream(io.StringIO(yaml.safe_dump(V1_BASE)))
    assert js.jobspec == V1_BASE
    assert Jobspec.from_yaml_stream(json.dumps(V1_BASE)).version == 1
    with pytest.raises(ValueError, match="jobspec: must be a mapping"):
        Jobspec.from_yaml_stream("- 1\n- 2\n")


# -- factories (flux-core JobspecV1.from_command & friends, RFC 25) ---------


def _shell_opt(js, key):
    return js.getattr("system.shell.options." + key)


def test_from_command_minimal():
    js = JobspecV1.from_command(["hostname"], environment={})
    assert js.version == 1
    assert js.resources == [{"type": "slot", "count": 1, "label": "task",
                             "with": [{"type": "core", "count": 1}]}]
    assert js.tasks == [{"command": ["hostname"], "slot": "task", "count": {"per_slot": 1}}]
    assert js.duration == 0  # unset / unlimited (RFC 14)
    js.validate()


def test_from_command_inherits_environment(monkeypatch):
    monkeypatch.setenv("FLUXNB_TEST_ENV", "yes")
    js = JobspecV1.from_command(["true"])
    assert js.environment["FLUXNB_TEST_ENV"] == "yes"


def test_from_command_tasks_cores_gpus():
    js = JobspecV1.from_command(["myapp"], num_tasks=10, cores_per_task=2, gpus_per_task=1,
                                environment={})
    slot = js.resources[0]
    assert (slot["type"], slot["count"], slot["label"]) == ("slot", 10, "task")
    assert slot["with"] == [{"type": "core", "count": 2}, {"type": "gpu", "count": 1}]
    assert js.resource_counts() == {"slot": 10, "core": 20, "gpu": 10}
    validate(js, version=1)
    no_gpu = JobspecV1.from_command(["a"], gpus_per_task=0, environment={})
    assert [c["type"] for c in no_gpu.resources[0]["with"]] == ["core"]


def test_from_command_nodes_even():
    js = JobspecV1.from_command(["myapp"], num_tasks=16, num_nodes=4, exclusive=True,
                                environment={})
    node = js.resources[0]
    assert (node["type"], node["count"], node["exclusive"]) == ("node", 4, True)
    assert node["with"][0]["type"] == "slot" and node["with"][0]["count"] == 4
    assert js.tasks[0]["count"] == {"per_slot": 1}
    validate(js, version=1)


def test_from_command_nodes_uneven_uses_total():
    # RFC 25 use case 2.1: 5 tasks across 4 nodes
    js = JobspecV1.from_command(["hostname"], num_tasks=5, num_nodes=4, environment={})
    assert js.resources[0]["with"][0]["count"] == 2  # ceil(5/4) slots per node
    assert js.tasks[0]["count"] == {"total": 5}
    validate(js, version=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_tasks": 0}, "task count"),
        ({"cores_per_task": 0}, "cores per task"),
        ({"gpus_per_task": -1}, "gpus per task"),
        ({"num_nodes": 0}, "node count"),
        ({"num_tasks": 2, "num_nodes": 3}, "greater than task count"),
        ({"exclusive": True}, "exclusive can only be set with a node count"),
    ],
)
def test_from_command_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        JobspecV1.from_command(["a"], environment={}, **kwargs)


def test_from_command_string_command_rejected():
    with pytest.raises(TypeError):
        JobspecV1.from_command("hostname", environment={})


def test_from_command_extra_options():
    js = JobspecV1.from_command(
        ["a"], duration="10m", environment={"A": "1"}, env_expand={"X": "{{tmpdir}}"},
        cwd="/my/cwd", rlimits={"nofile": 12000}, name="test", output="out", error="err",
        label_io=True, unbuffered=True, queue="testq", bank="testbank",
    )
    assert js.duration == 600
    assert js.environment == {"A": "1"}
    assert _shell_opt(js, "env-expand") == {"X": "{{tmpdir}}"}
    assert _shell_opt(js, "rlimit") == {"nofile": 12000}
    assert js.cwd == "/my/cwd"
    assert js.getattr("system.job.name") == "test"
    assert (js.output, js.error) == ("out", "err")
    assert _shell_opt(js, "output.stdout.label") is True
    assert _shell_opt(js, "output.stderr.label") is True
    assert js.unbuffered
    assert js.queue == "testq" and js.getattr("system.bank") == "testbank"
    validate(js, version=1)


def test_from_nest_command():
    js = JobspecV1.from_nest_command(["sleep", "0"], num_slots=2, num_nodes=2,
                                     broker_opts=["-v"], environment={})
    assert js.tasks[0]["command"] == ["flux", "broker", "-v", "sleep", "0"]
    assert js.resources[0]["type"] == "node" and js.resources[0]["count"] == 2
    assert _shell_opt(js, "per-resource.type") == "node"
    assert _shell_opt(js, "mpi") == "none"
    assert _shell_opt(js, "exit-timeout") == "none"
    assert _shell_opt(js, "pmi") == "simple"
    validate(js, version=1)


def test_from_batch_command():
    script = "#!/bin/sh\nflux run hostname\n"
    js = JobspecV1.from_batch_command(script, "myjob", args=["a", "b"], num_slots=4,
                                      cores_per_slot=2, conf={"resource": {"noverify": True}},
                                      duration=60, environment={})
    assert js.tasks[0]["command"] == ["flux", "broker", "-c{{tmpdir}}/conf.json",
                                      "{{tmpdir}}/script", "a", "b"]
    assert js.getattr("system.job.name") == "myjob"
    files = js.getattr("system.files")
    assert files["script"] == {"mode": 0o100700, "data": script, "encoding": "utf-8"}
    assert files["conf.json"]["data"] == {"resource": {"noverify": True}}
    assert js.resources[0]["count"] == 4
    assert js.resources[0]["with"] == [{"type": "core", "count": 2}]
    assert js.duration == 60
    validate(js, version=1)


def test_from_batch_command_requires_shebang():
    with pytest.raises(ValueError, match="#!"):
        JobspecV1.from_batch_command("sleep 0", "noshebang", environment={})


# -- setters and helpers ----------------------------------------------------


@pytest.fixture
def basic():
    return Jobspec.from_yaml_file(JOBSPECS / "valid" / "basic_v1.yaml")


@pytest.mark.parametrize("duration", [100, 100.5])
def test_duration_setter(basic, duration):
    for value in (duration, datetime.timedelta(seconds=duration), f"{duration}s"):
        basic.duration = value
        assert basic.duration == float(duration)
    basic.duration = "1.5m"
    assert basic.duration == 90.0
    basic.duration = "2h"
    assert basic.getattr("duration") == 7200.0


@pytest.mark.parametrize("bad", [-100, -100.5, datetime.timedelta(seconds=-5), "10h5m",
                                 "infinity", float("nan")])
def test_duration_setter_invalid_value(basic, bad):
    with pytest.raises(ValueError):
        basic.duration = bad


@pytest.mark.parametrize("bad", [[], {}, None])
def test_duration_setter_invalid_type(basic, bad):
    with pytest.raises(TypeError):
        basic.duration = bad


def test_cwd_environment_queue(basic):
    basic.cwd = pathlib.PurePosixPath("/tmp")
    assert basic.cwd == "/tmp"
    basic.environment = {"HOME": "foo"}
    assert basic.environment == {"HOME": "foo"}
    basic.queue = "default"
    assert basic.queue == "default"
    with pytest.raises(TypeError):
        basic.queue = 12
    with pytest.raises(ValueError):
        basic.environment = ["HOME=foo"]


@pytest.mark.parametrize("name, stream, iotype", [
    ("output", "stdout", "output"), ("error", "stderr", "output"), ("input", "stdin", "input")])
def test_stdio(basic, name, stream, iotype):
    assert getattr(basic, name) is None and getattr(basic, stream) is None
    setattr(basic, stream, "foo.txt")
    assert getattr(basic, name) == "foo.txt"
    assert basic.getattr(f"shell.options.{iotype}.{stream}.type") == "file"
    assert basic.jobspec["attributes"]["system"]["shell"]["options"][iotype][stream]["path"] \
        == "foo.txt"
    with pytest.raises(TypeError):
        setattr(basic, name, None)


def test_unbuffered(basic):
    with pytest.raises(TypeError):
        basic.unbuffered = 1
    basic.unbuffered = True
    assert basic.unbuffered
    assert basic.getattr("shell.options.output.batch-timeout") == 0.05
    basic.unbuffered = False
    assert not basic.unbuffered
    basic.unbuffered = True
    basic.setattr_shell_option("output.batch-timeout", 1.0)
    basic.unbuffered = False
    assert basic.getattr("shell.options.output.batch-timeout") == 1.0


def test_setattr_key_prefixes(basic):
    basic.setattr("cow", 1)
    basic.setattr("system.cat", 2)
    basic.setattr("user.dog", 3)
    basic.setattr("attributes.system.chicken", 4)
    basic.setattr("attributes.user.duck", 5)
    for key in ("cow", "system.cow", "attributes.system.cow"):
        assert basic.getattr(key) == 1
    assert basic.getattr("cat") == 2
    assert basic.getattr("user.dog") == 3 and basic.getattr("attributes.user.dog") == 3
    assert basic.getattr("chicken") == 4
    assert basic.getattr("user.duck") == 5
    assert basic.attributes["system"]["cow"] == 1
    with pytest.raises(KeyError):
        basic.getattr("nonexistent")
    with pytest.raises(TypeError, match="not a mapping"):
        basic.setattr("cow.moo", 1)


def test_dumps_yaml_repr_str(basic):
    basic.cwd = "/foo/bar"
    basic.stdout = "/bar/baz"
    basic.duration = 1000.3133
    assert json.loads(basic.dumps()) == basic.jobspec
    assert yaml.safe_load(basic.to_yaml()) == basic.jobspec
    assert eval(repr(basic), {"Jobspec": Jobspec}).jobspec == basic.jobspec
    assert str(basic) == str(basic.jobspec)
    assert "ƒ" in Jobspec(**{**basic.jobspec, "attributes": {"user": {"id": "ƒNH"}}}).dumps()


def test_iter_and_resource_counts():
    js = Jobspec.from_yaml_file(JOBSPECS / "valid" / "use_case_2.4.yaml")
    assert len(list(js)) == 7
    assert len([r for r in js if r["type"] == "core"]) == 2
    counts = js.resource_counts()
    assert (counts["node"], counts["slot"], counts["core"], counts["memory"]) == (1, 11, 16, 64)


def test_add_file_from_path(basic, tmp_path):
    path = tmp_path / "input.txt"
    path.write_text("hello")
    basic.add_file("input.txt", str(path))
    ref = basic.getattr("system.files")["input.txt"]
    assert ref["data"] == "hello" and ref["encoding"] == "utf-8" and ref["size"] == 5
    path.write_bytes(b"\xff\xfe")
    basic.add_file("bin", str(path))
    assert basic.getattr("system.files")["bin"]["encoding"] == "base64"
    basic.validate()


def test_environment_default_is_copy(monkeypatch):
    js = JobspecV1.from_command(["a"])
    js.environment["FLUXNB_NOT_IN_OS"] = "1"
    assert "FLUXNB_NOT_IN_OS" not in os.environ
