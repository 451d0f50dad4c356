"""RFC 18 eventlogs. Vectors from RFC 18's example, flux-core
src/common/libeventlog/test/eventlog.c (good/bad events and logs) and
src/common/libeventlog/test/formatter.c (raw, iso, offset, human output)."""

from __future__ import annotations

import json
from datetime import timezone

import pytest

from fluxnb.runtime.util.eventlog import (
    EventlogFormatter,
    create_entry,
    decode,
    decode_entry,
    encode,
    encode_entry,
    encode_event,
    format_event,
    format_eventlog,
    validate_entry,
)

GOOD_EVENTS = [
    '{"timestamp":42.0,"name":"foo"}\n',
    '{"timestamp":42.0,"name":"foo","context":{"bar":16}}\n',
]
GOOD_LOGS = [
    "",
    '{"timestamp":42.0,"name":"foo"}\n{"timestamp":42.0,"name":"foo"}\n',
    '{"timestamp":42.0,"name":"foo"}\n{"timestamp":42.0,"name":"foo","context":{"bar":16}}\n',
]
BAD_EVENTS = [
    "\n",
    "\n\n",
    "foo",
    "foo\n",
    '{"timestamp":42.0,"name":"foo"}',                          # no newline end
    '{"timestamp":42.0,"name":"foo","context":{"bar":16}}',     # no newline end
    '{"timestamp":42.0,"name":"foo"}\n\n',                      # double newline end
    '\n{"timestamp":42.0,"name":"foo"}',                        # prefix newline
    '{"timestamp":"foo","name":"foo"}\n',                       # timestamp bad
    '{"timestamp":42.0,"name":18}\n',                           # name bad
    '{"timestamp":42.0}\n',                                     # no name
    '{"name":"foo"}\n',                                         # no timestamp
    '{"timestamp":42.0,"name":"foo","context":"bar"}',          # context not object
]
BAD_LOGS = [
    '{"timestamp":42.0,"name":"foo"}{"timestamp":42.0,"name":"foo"}\n',
    '{"timestamp":42.0,"name":"foo"}\n\n{"timestamp":42.0,"name":"foo"}\n',
]

# RFC 18's example eventlog (its alloc line quotes "context", which the
# RFC text omits by a typo).
RFC18 = (
    '{"timestamp":1552593348.073045,"name":"submit","context":{"urgency":16,"userid":5588,"flags":0}}\n'
    '{"timestamp":1552593547.411336,"name":"urgency","context":{"urgency":0,"userid":5588}}\n'
    '{"timestamp":1552593348.088391,"name":"alloc","context":{"note":"rank0/core[0-1]"}}\n'
    '{"timestamp":1552593348.093541,"name":"free"}\n'
    '{"timestamp":1552593348.089787,"name":"start"}\n'
    '{"timestamp":1552593348.092830,"name":"release","context":{"ranks":"all","final":true}}\n'
    '{"timestamp":1552593348.090927,"name":"finish","context":{"status":0}}\n'
    '{"timestamp":1552593348.104432,"name":"clean"}\n'
)

# flux-core formatter.c tests[]: (input, raw, iso, offset, human with color).
# They run in sequence through one formatter (offsets and minute breaks).
G, BG, Y, B, M, N, R = ("\x1b[32m", "\x1b[1m\x1b[32m", "\x1b[33m", "\x1b[34m",
                        "\x1b[35m", "\x1b[37m", "\x1b[0m")
FORMATTER = [
    ('{"timestamp":1699995759.5377746,"name":"submit","context":{"userid":1001,"urgency":16,"flags":0,"version":1}}',
     "1699995759.537775 submit userid=1001 urgency=16 flags=0 version=1",
     "2023-11-14T21:02:39.537774Z submit userid=1001 urgency=16 flags=0 version=1",
     "0.000000 submit userid=1001 urgency=16 flags=0 version=1",
     f"{BG}[Nov14 21:02]{R} {Y}submit{R} {B}userid{R}={N}1001{R} {B}urgency{R}={N}16{R} "
     f"{B}flags{R}={N}0{R} {B}version{R}={N}1{R}"),
    ('{"timestamp":1699995759.5597851,"name":"validate"}',
     "1699995759.559785 validate", "2023-11-14T21:02:39.559785Z validate",
     "0.022011 validate", f"{G}[  +0.022011]{R} {Y}validate{R}"),
    ('{"timestamp":1699995759.5738351,"name":"depend"}',
     "1699995759.573835 depend", "2023-11-14T21:02:39.573835Z depend",
     "0.036061 depend", f"{G}[  +0.036061]{R} {Y}depend{R}"),
    ('{"timestamp":1699995759.5739679,"name":"priority","context":{"priority":66963}}',
     "1699995759.573968 priority priority=66963",
     "2023-11-14T21:02:39.573967Z priority priority=66963",
     "0.036193 priority priority=66963",
     f"{G}[  +0.036193]{R} {Y}priority{R} {B}priority{R}={N}66963{R}"),
    ('{"timestamp":1699995759.6047542,"name":"alloc"}',
     "1699995759.604754 alloc", "2023-11-14T21:02:39.604754Z alloc",
     "0.066980 alloc", f"{G}[  +0.066980]{R} {Y}alloc{R}"),
    ('{"timestamp":1699995759.6055193,"name":"prolog-start","context":{"description":"job-manager.prolog"}}',
     '1699995759.605519 prolog-start description="job-manager.prolog"',
     '2023-11-14T21:02:39.605519Z prolog-start description="job-manager.prolog"',
     '0.067745 prolog-start description="job-manager.prolog"',
     f'{G}[  +0.067745]{R} {Y}prolog-start{R} {B}description{R}={M}"job-manager.prolog"{R}'),
    ('{"timestamp":1699995759.6055939,"name":"prolog-start","context":{"description":"cray-pals-port-distributor"}}',
     '1699995759.605594 prolog-start description="cray-pals-port-distributor"',
     '2023-11-14T21:02:39.605593Z prolog-start description="cray-pals-port-distributor"',
     '0.067819 prolog-start description="cray-pals-port-distributor"',
     f'{G}[  +0.067819]{R} {Y}prolog-start{R} {B}description{R}={M}"cray-pals-port-distributor"{R}'),
    ('{"timestamp":1699995759.7634473,"name":"prolog-finish","context":{"description":"cray-pals-port-distributor","status":0}}',
     '1699995759.763447 prolog-finish description="cray-pals-port-distributor" status=0',
     '2023-11-14T21:02:39.763447Z prolog-finish description="cray-pals-port-distributor" status=0',
     '0.225673 prolog-finish description="cray-pals-port-distributor" status=0',
     f'{G}[  +0.225673]{R} {Y}prolog-finish{R} {B}description{R}={M}"cray-pals-port-distributor"{R} '
     f'{B}status{R}={N}0{R}'),
    ('{"timestamp":1699995760.3795953,"name":"prolog-finish","context":{"description":"job-manager.prolog","status":0}}',
     '1699995760.379595 prolog-finish description="job-manager.prolog" status=0',
     '2023-11-14T21:02:40.379595Z prolog-finish description="job-manager.prolog" status=0',
     '0.841821 prolog-finish description="job-manager.prolog" status=0',
     f'{G}[  +0.841821]{R} {Y}prolog-finish{R} {B}description{R}={M}"job-manager.prolog"{R} '
     f'{B}status{R}={N}0{R}'),
    ('{"timestamp":1699995760.3859105,"name":"start"}',
     "1699995760.385911 start", "2023-11-14T21:02:40.385910Z start",
     "0.848136 start", f"{G}[  +0.848136]{R} {Y}start{R}"),
    ('{"timestamp":1699995760.7054179,"name":"memo","context":{"uri":"ssh://host/var/tmp/user/flux-0QZyMU/local-0"}}',
     '1699995760.705418 memo uri="ssh://host/var/tmp/user/flux-0QZyMU/local-0"',
     '2023-11-14T21:02:40.705417Z memo uri="ssh://host/var/tmp/user/flux-0QZyMU/local-0"',
     '1.167643 memo uri="ssh://host/var/tmp/user/flux-0QZyMU/local-0"',
     f'{G}[  +1.167643]{R} {Y}memo{R} {B}uri{R}={M}"ssh://host/var/tmp/user/flux-0QZyMU/local-0"{R}'),
    ('{"timestamp":1700074161.0240808,"name":"finish","context":{"status":0}}',
     "1700074161.024081 finish status=0", "2023-11-15T18:49:21.024080Z finish status=0",
     "78401.486306 finish status=0",
     f"{BG}[Nov15 18:49]{R} {Y}finish{R} {B}status{R}={N}0{R}"),
    ('{"timestamp":1700074161.0250554,"name":"epilog-start","context":{"description":"job-manager.epilog"}}',
     '1700074161.025055 epilog-start description="job-manager.epilog"',
     '2023-11-15T18:49:21.025055Z epilog-start description="job-manager.epilog"',
     '78401.487281 epilog-start description="job-manager.epilog"',
     f'{G}[  +0.000975]{R} {Y}epilog-start{R} {B}description{R}={M}"job-manager.epilog"{R}'),
    ('{"timestamp":1700074161.1864166,"name":"release","context":{"ranks":"all","final":true}}',
     '1700074161.186417 release ranks="all" final=true',
     '2023-11-15T18:49:21.186416Z release ranks="all" final=true',
     '78401.648642 release ranks="all" final=true',
     f'{G}[  +0.162336]{R} {Y}release{R} {B}ranks{R}={M}"all"{R} {B}final{R}={M}true{R}'),
    ('{"timestamp":1700074445.1199436,"name":"epilog-finish","context":{"description":"job-manager.epilog","status":0}}',
     '1700074445.119944 epilog-finish description="job-manager.epilog" status=0',
     '2023-11-15T18:54:05.119943Z epilog-finish description="job-manager.epilog" status=0',
     '78685.582169 epilog-finish description="job-manager.epilog" status=0',
     f'{BG}[Nov15 18:54]{R} {Y}epilog-finish{R} {B}description{R}={M}"job-manager.epilog"{R} '
     f'{B}status{R}={N}0{R}'),
    ('{"timestamp":1700074445.1203697,"name":"free"}',
     "1700074445.120370 free", "2023-11-15T18:54:05.120369Z free",
     "78685.582595 free", f"{G}[  +0.000426]{R} {Y}free{R}"),
    ('{"timestamp":1700074445.120451,"name":"clean"}',
     "1700074445.120451 clean", "2023-11-15T18:54:05.120450Z clean",
     "78685.582676 clean", f"{G}[  +0.000507]{R} {Y}clean{R}"),
]


@pytest.mark.parametrize("line", GOOD_EVENTS)
def test_good_events(line):
    assert len(decode(line)) == 1
    assert decode_entry(line)["name"] == "foo"


@pytest.mark.parametrize("text", GOOD_LOGS)
def test_good_logs(text):
    assert len(decode(text)) == text.count("\n")


@pytest.mark.parametrize("text", BAD_EVENTS + BAD_LOGS)
def test_bad_logs(text):
    with pytest.raises(ValueError, match=r"eventlog line \d+: "):
        decode(text)


@pytest.mark.parametrize("text, message", [
    ('{"timestamp":42.0,"name":"foo"}\n{"timestamp":42.0}\n', "line 2: missing 'name'"),
    ('{"name":"foo"}\n', "line 1: missing 'timestamp'"),
    ('{"timestamp":"x","name":"foo"}\n', "line 1: 'timestamp' must be a number"),
    ('{"timestamp":0,"name":"foo"}\n', "line 1: 'timestamp' must be greater than zero"),
    ('{"timestamp":1,"name":""}\n', "line 1: 'name' is empty"),
    ('{"timestamp":1,"name":"a","context":[1]}\n', "line 1: 'context' must be an object"),
    ('[1]\n', "line 1: entry is a JSON list"),
    ('{"timestamp":1,"name":"a"}\nfoo\n', "line 2: not valid JSON"),
    ('{"timestamp":1,"name":"a"}\n{"timestamp"', "line 2: not terminated by a newline"),
    ('{"timestamp":1,"name":"a"}\n\n', "line 2: empty line"),
])
def test_decode_errors_name_line_and_problem(text, message):
    with pytest.raises(ValueError, match=message):
        decode(text)


def test_rfc18_example():
    entries = decode(RFC18)
    assert [e["name"] for e in entries] == [
        "submit", "urgency", "alloc", "free", "start", "release", "finish", "clean"]
    assert entries[5]["context"] == {"ranks": "all", "final": True}
    assert "context" not in entries[3]


def test_encode_event():
    line = encode_event("submit", {"userid": 1000, "urgency": 16}, timestamp=1552593348.073045)
    assert line == ('{"timestamp":1552593348.073045,"name":"submit",'
                    '"context":{"userid":1000,"urgency":16}}\n')
    assert encode_event("clean", timestamp=1552593348.104432) == \
        '{"timestamp":1552593348.104432,"name":"clean"}\n'


def test_encode_event_default_timestamp():
    entry = decode_entry(encode_event("foo"))
    assert entry["timestamp"] > 1.6e9 and entry["name"] == "foo"


def test_encode_roundtrip_like_flux():
    # from eventlog_entry_encoding: names and context values keep newlines
    for name, ctx in [("a a", None), ("foo\n", None), ("foo", {"data": "foo"}),
                      ("foo", {"data": "foo\n"})]:
        line = encode_event(name, ctx, timestamp=1.0)
        assert line.count("\n") == 1 and line.endswith("\n")
        entry = decode_entry(line)
        assert entry["name"] == name and entry.get("context") == ctx


@pytest.mark.parametrize("kwargs, message", [
    ({"name": ""}, "'name' is empty"),
    ({"name": "foo", "context": ["foo"]}, "'context' must be a mapping"),
    ({"name": "foo", "timestamp": -1.0}, "greater than zero"),
    ({"name": "foo", "context": {"x": object()}}, "invalid eventlog entry 'foo'"),
])
def test_encode_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        encode_event(**kwargs)


def test_encode_whole_log():
    entries = decode(RFC18)
    assert decode(encode(entries)) == entries
    assert encode([]) == ""
    assert encode_entry(create_entry("x", timestamp=2.5)) == '{"timestamp":2.5,"name":"x"}\n'


def test_validate_entry():
    validate_entry({"timestamp": 1.0, "name": "x"})
    with pytest.raises(ValueError, match="missing 'timestamp'"):
        validate_entry({"name": "x"})
    with pytest.raises(ValueError, match="embedded newline"):
        decode_entry('{"timestamp":1,"name":"a"}\n{"timestamp":1,"name":"a"}\n')


def test_formatter_vectors():
    """Same formatter across the sequence, as flux-core's test does."""
    offset = EventlogFormatter(time_format="offset")
    human = EventlogFormatter(time_format="human", color=True, tz=timezone.utc)
    for line, raw, iso, off, hum in FORMATTER:
        entry = json.loads(line)
        assert format_event(entry) == raw
        assert format_event(entry, time_format="iso", tz=timezone.utc) == iso
        assert offset.format(entry) == off
        assert human.format(entry) == hum
        assert format_event(entry, format="json") == json.dumps(entry, separators=(",", ":"))


def test_format_event_brief_examples():
    e = {"timestamp": 1696453645.123456, "name": "submit",
         "context": {"userid": 1000, "urgency": 16, "flags": 0, "version": 1}}
    assert format_event(e) == "1696453645.123456 submit userid=1000 urgency=16 flags=0 version=1"
    assert format_event(e, time_format="iso", tz=timezone.utc) == \
        "2023-10-04T21:07:25.123456Z submit userid=1000 urgency=16 flags=0 version=1"
    assert format_event(e, time_format="offset") == \
        "0.000000 submit userid=1000 urgency=16 flags=0 version=1"
    assert format_event(e, time_format="offset", t0=1696453644.123456) == \
        "1.000000 submit userid=1000 urgency=16 flags=0 version=1"


def test_format_nested_context_is_compact_json():
    e = {"timestamp": 1.5, "name": "alloc",
         "context": {"annotations": {"sched": {"resource_summary": "rank0/core0"}}, "x": [1, 2]}}
    assert format_event(e) == ('1.500000 alloc annotations={"sched":{"resource_summary":'
                               '"rank0/core0"}} x=[1,2]')


def test_exception_name_is_red():
    e = {"timestamp": 1.0, "name": "exception", "context": {"type": "cancel", "severity": 0}}
    out = format_event(e, color=True)
    assert "\x1b[1m\x1b[31mexception\x1b[0m" in out
    assert format_event(e) == '1.000000 exception type="cancel" severity=0'


def test_iso_with_offset_timezone():
    from datetime import timedelta
    tz = timezone(timedelta(hours=-7))
    e = {"timestamp": 1696453645.123456, "name": "submit"}
    assert format_event(e, time_format="iso", tz=tz) == "2023-10-04T14:07:25.123456-07:00 submit"


def test_format_eventlog_and_reset():
    log = decode(RFC18)[:2]
    out = format_eventlog(log, time_format="offset")
    assert out == ("0.000000 submit urgency=16 userid=5588 flags=0\n"
                   "199.338291 urgency urgency=0 userid=5588\n")
    evf = EventlogFormatter(time_format="offset")
    evf.format(log[1])
    evf.reset()
    assert evf.format(log[0]).startswith("0.000000 ")


def test_formatter_rejects_bad_options_and_entries():
    with pytest.raises(ValueError, match="timestamp format 'foo'"):
        EventlogFormatter(time_format="foo")
    with pytest.raises(ValueError, match="eventlog format 'xml'"):
        EventlogFormatter(format="xml")  # type: ignore[arg-type]
    assert EventlogFormatter(time_format="reltime").time_format == "human"
    with pytest.raises(ValueError, match="'context' must be an object"):
        format_event({"timestamp": 1699995759.0, "name": "bad", "context": ["foo"]})
