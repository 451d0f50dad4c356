"""Cases evaluated by both fluxnb's ``flux`` package and real flux-core's
(``/opt/flux/bin/flux python flux_diff_cases.py``); prints one JSON object
mapping each case to the repr of its value (or ``EXC TypeName``).
Used by tests/compat/test_flux_utils.py; run it standalone to compare."""

import json
import os
import sys
import time

os.environ["TZ"] = "UTC"
time.tzset()

import flux.hostlist as hostlist  # noqa: E402
import flux.idset as idset  # noqa: E402,F401
import flux.util as util  # noqa: E402,F401
from flux.constraint.parser import ConstraintParser  # noqa: E402
from flux.eventlog import EventLogEvent, EventLogFormatter  # noqa: E402,F401
from flux.resource import ResourceSet  # noqa: E402,F401
from flux.shape.parser import ShapeParser  # noqa: E402
from flux.uri import JobURI  # noqa: E402,F401


class P(ConstraintParser):
    operator_map = {None: "t"}


class C(ConstraintParser):
    operator_map = {None: "t"}
    combined_terms = {"t"}


class I:  # noqa: E742 - an item with attributes, for OutputFormat
    def __init__(self, **kw):
        self.__dict__.update(kw)


CASES = [
 # hostlist
 "str(hostlist.decode('foo[1-3],foo5,bar'))", "str(hostlist.decode('a1,a2,a3,b01,b02'))",
 "str(hostlist.decode('foo[01-10]').sort())", "str(hostlist.decode('n[5-1]'))",
 "str(hostlist.decode('foo[1-3]-eth0'))", "str(hostlist.decode('x[1,1,2]').uniq())",
 "hostlist.decode('foo[0-5]')[1:4].expand()", "str(hostlist.Hostlist(['a1','b2','a2']).sort())",
 "len(hostlist.decode('p[1-3],q[1-3]'))", "str(hostlist.decode('[1-3]'))",
 "str(hostlist.decode('foo[1-2][3-4]'))", "str(hostlist.decode('node[009-011]'))",
 "hostlist.decode('h[1-5]').index('h[2,4]')", "'h3' in hostlist.decode('h[1-5]')",
 "str(hostlist.decode(''))", "repr(hostlist.decode('a,b'))",
 # idset
 "str(idset.decode('1,3-5,7'))", "idset.decode('0-3').encode(idset.IDSET_FLAG_BRACKETS|idset.IDSET_FLAG_RANGE)",
 "idset.decode('5').encode(idset.IDSET_FLAG_BRACKETS|idset.IDSET_FLAG_RANGE)",
 "str(idset.IDset('3,1,2'))", "str(idset.IDset('1-3').union('7'))", "idset.decode('').first()",
 "idset.decode('').last()", "str(idset.IDset('[1-3]'))", "str(idset.IDset('1-3,2'))",
 "str(idset.IDset('01'))", "str(idset.IDset(' 1'))", "idset.IDset('1-3').count()",
 "str(idset.IDset('0-5') - '2')", "str(idset.IDset({5, 1}))",
 # resource set
 "str(ResourceSet({'version':1,'execution':{'R_lite':[{'rank':'0-1','children':{'core':'0-3'}},{'rank':'2','children':{'core':'0-1','gpu':'0'}}],'nodelist':['n[0-2]']}}))",
 "ResourceSet({'version':1,'execution':{'R_lite':[{'rank':'0-1','children':{'core':'0-3'}}],'nodelist':['n[0-1]']}}).to_dict()",
 "ResourceSet({'version':1,'execution':{'R_lite':[{'rank':'0-1','children':{'core':'0-3'}}],'nodelist':['n[0-1]'],'properties':{'x':'1'}}}).properties",
 "str(ResourceSet({'version':1,'execution':{'R_lite':[{'rank':'0-3','children':{'core':'0-3'}}],'nodelist':['n[0-3]'],'properties':{'x':'1-2'}}}).copy_constraint({'hostlist':['n[0-1]']}))",
 "str(ResourceSet({'version':1,'execution':{'R_lite':[{'rank':'0-3','children':{'core':'0-3'}}],'nodelist':['n[0-3]']}}).copy_constraint({'ranks':['0','3']}))",
 "ResourceSet({'version':1,'execution':{'R_lite':[{'rank':'0-3','children':{'core':'0-3'}}],'nodelist':['n[0-3]']}}).host_ranks('n[3,1]')",
 # eventlog
 "EventLogFormatter().format({'timestamp': 1.5, 'name': 'x', 'context': {'a': 'ƒ', 'b': [1, 2], 'c': None}})",
 "EventLogFormatter(format='json').format({'timestamp': 1.5, 'name': 'x', 'context': {}})",
 "str(EventLogEvent({'timestamp': 1738774194.1777956, 'name': 'memo', 'context': {'test': 'ƒ Φ'}}))",
 "EventLogEvent('{\"timestamp\":1.0,\"name\":\"a\"}').context_string",
 "EventLogFormatter(timestamp_format='offset').format({'timestamp': 1.5, 'name': 'exception', 'context': {'type':'cancel','severity':0}})",
 # uri
 "JobURI('local:///tmp//foo').path", "JobURI('ssh://host:22/tmp/x?tag=a').local",
 # constraint/shape
 "P().parse('a|b c')", "P().parse('not a or b')", "P().parse('-a -b')", "P().parse('host:\"x y\"')",
 "P().parse('a and (b or c) d')", "ShapeParser().parse('node=2/socket/core=4')",
 "ShapeParser().parse('slot=2{x}/core')", "ShapeParser().parse('node{x}/slot/core=2')",
 "ShapeParser().parse('node=1-4/slot/core')", "ShapeParser().parse('slot/[core=2;gpu]')",
 "ShapeParser().parse('slot{label,foo:1.5,bar:true}/core')",
 # util
 "util.parse_fsd('1.5m')", "util.parse_fsd('2h')", "util.fsd(90)", "util.fsd(0.5)", "util.fsd(86400*3)",
 "util.fsd(3600)", "util.fsd(59.99)", "util.fsd(1e-5)",
 "util.OutputFormat('{a:>5} ?:{b:<3} +:{c}', headings={'a':'A','b':'B','c':'CC'}).filter([I(a=1,b='',c='xyz')])",
 "util.OutputFormat('{a:>5} {c:<3}', headings={'a':'A','c':'CC'}).header()",
 "util.OutputFormat('{a!d:%H::>8}', headings={'a':'A'}).format(I(a=0))",
 "f'{util.UtilDatetime.fromtimestamp(0):%H::<4h}|'",
 "util.get_treedict({'a':{'b':1}}, 'a.b')", "util.get_treedict({'a':{'b':1}}, 'a.c', 7)",
]

CONSTRAINTS = ["a|b c", "a|b -c", "a|b not c", "a b|c", "a&b c", "a&b -c", "not a b", "not a|b", "not a -b",
     "not a not b", "a -b -c", "a|b&c", "a|b (c)", "(a|b)|c", "a|(b|c)", "a or b or c d",
     "-a|-b", "not (a b) c", "a && b || c && d", "a b c|d e", "x:1 x:2", "a|b|c", "a -b c",
     "not not a", "a not b c", "((a))", "a&&b&&c|d", "- a", "a:", "a:b:c", "not", "a not", "(", ")", "a)"]

SHAPES = ["node=2/socket/core=4", "slot=2{x}/core", "node{x}/slot/core=2", "node=1-4/slot/core",
     "slot/[core=2;gpu]", "slot{label,foo:1.5,bar:true}/core", "slot{a,b:null}/core", "node{+x}/slot/core",
     "node{unit:GB,x}/slot/core", "slot=[2-4]/core", "slot=2+/core", "slot=1-8:2:*/core",
     "slot=0/core", "slot=2-1/core", "core", "node", "slot", "slot=2", "slot{}/core", "node{}/slot/core",
     "slot=a/core", "SLOT/core", "slot/node/core", "node/slot=4/core=2/gpu", "[node;node]/slot/core",
     "node{list:[1,2]}/slot/core", "node{k:'quoted v'}/slot/core", "node{k:v w}/slot/core",
     "slot/core{x}", "slot{-x}/core", " slot / core ", "slot/[core]", "slot/[]", "[slot/core]",
     "node=2{x}/slot=3{t}/core=2", "slot{lab}/core{lab2}", "node/slot/core;gpu", "slot/core/"] + ["slot{a:b}/core", "slot{lab,-x}/core", "slot{lab,x}/core", "node{a,b}/slot/core", "node=2:3/slot/core",
          "slot=2-8:2/core", "slot=4,8/core", "slot=[4,8]/core", "node{a:[x,y]}/slot/core", "node{a:-1}/slot/core",
          "node{a:1e3}/slot/core", "node{a:01}/slot/core", "node{a:}/slot/core", "node{:a}/slot/core", "slot{lab}}/core"]

HOSTLISTS = ['foo[1-2][3-4]', 'r[1-2]n[1-2]', 'foo[1-2]-eth0', 'r[1-2]n[1-2]-x', 'a[1-2]b', 'x[1-2]y[3]z', 'r1n[1-2],r2n[1-2]', 'foo[1-2]bar[01-02]']

CASES += [f"{cls}().parse({q!r})" for cls in ("P", "C") for q in CONSTRAINTS]
CASES += [f"ShapeParser().parse({q!r})" for q in SHAPES]
CASES += [f"(str(hostlist.decode({s!r})), len(hostlist.decode({s!r})), "
          f"hostlist.decode({s!r}).expand())" for s in HOSTLISTS]


def main():
    out = {}
    for case in CASES:
        try:
            out[case] = repr(eval(case))
        except Exception as exc:  # the exception type is what is compared
            out[case] = "EXC " + type(exc).__name__
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
