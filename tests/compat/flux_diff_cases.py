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

R4 = {"version": 1, "execution": {"R_lite": [{"rank": "0-3", "children": {"core": "0-3"}}],
                                  "nodelist": ["n[0-3]"], "starttime": 0, "expiration": 0}}
RG = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0-7", "gpu": "0-1"}},
                                             {"rank": "1-2", "children": {"core": "0-3"}}],
                                  "nodelist": ["g0", "c[1-2]"]}}


def pool_allocs(R, *reqs):
    from flux.resource.ResourceCount import ResourceCount
    from flux.resource.Rv1Pool import ResourceRequest, Rv1Pool
    pool, out = Rv1Pool(R), []
    for i, (nn, ns, ss, gs, excl) in enumerate(reqs):
        node = ResourceCount(nn, nn) if nn else None
        slot = ResourceCount(ns // nn, ns // nn) if nn else ResourceCount(ns, ns)
        try:
            out.append(pool.alloc(i, ResourceRequest(node, slot, ss, gs, 0.0, None, excl)).dumps())
        except OSError as exc:
            out.append(type(exc).__name__)
    return out, pool.copy_allocated().dumps()


def render(tree, **kw):
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tree.render(**kw)
    return buf.getvalue()


def tree():
    t = util.Tree("root", combine_children=True)
    c = t.append("a")
    c.append("x")
    c.append("x")
    t.append("b")
    t.append("b")
    return t


MORE = [
    "[idset.IDset(s).count() for s in ('0-3', '1,5', '')]",
    "str(idset.IDset('0-10').intersect('3-5', '4-20'))",
    "idset.IDset('0-3') == idset.IDset([0, 1, 2, 3])",
    "str(idset.IDset('5-7').set(1).clear(6))", "idset.IDset('1-3').next(3)",
    "idset.IDset('x')", "idset.IDset('3-1')", "idset.IDset([-1])", "idset.IDset(None)",
    "hostlist.decode('foo[1-3')", "hostlist.decode('foo]')", "hostlist.Hostlist(5)",
    "hostlist.decode('n[1-4]').delete('n[2-3]')", "str(hostlist.decode('n[1-4]')[[0, 3]])",
    "hostlist.decode('n[1-4]')[-5]", "hostlist.decode('n[1-4]').find('n9')",
    "str(ResourceSet(R4).copy_ranks('1-2'))", "str(ResourceSet(R4).remove_ranks('0'))",
    "ResourceSet(R4).nodelist.expand()", "str(ResourceSet(RG))", "ResourceSet(RG).count('gpu')",
    "ResourceSet(RG).host_ranks('c2')", "ResourceSet(RG).ranks.expand()",
    "str(ResourceSet(R4) - ResourceSet(RG))", "str(ResourceSet(RG) & ResourceSet(R4))",
    "str(ResourceSet(R4).copy_constraint({'not': [{'ranks': ['1-2']}]}))",
    "ResourceSet({'version': 2})", "ResourceSet('{')", "ResourceSet([])",
    "pool_allocs(R4, (0, 5, 1, 0, False), (2, 4, 1, 0, False), (1, 1, 1, 0, True), (0, 9, 1, 0, False))",
    "pool_allocs(RG, (0, 2, 1, 1, False), (0, 1, 3, 0, False), (0, 1, 1, 3, False), (3, 3, 2, 0, False))",
    "pool_allocs(R4, (4, 4, 1, 0, True), (1, 1, 1, 0, False))",
    "pool_allocs(R4, (0, 1, 5, 0, False), (5, 5, 1, 0, False))",
    "[util.fsd(x) for x in (0, 0.0005, 1.25, 12.5, 90, 5400, 2 * 86400, 1e9, -1)]",
    "[util.parse_fsd(x) for x in ('0', '1.5', '2m', '3h', '4d', '500ms', 'inf', 'infinity')]",
    "util.parse_fsd('-1')", "util.parse_fsd('1y')", "util.parse_fsd('')",
    "render(tree())", "render(tree(), style='ascii', level=1)", "render(tree(), skip_root=True)",
    "util.OutputFormat('{a:>4} {b!F:>6}', headings={'a':'A','b':'B'}).format(I(a=7, b=90))",
    "util.OutputFormat('{a:>4} {b!H:>8}', headings={'a':'A','b':'B'}).format(I(a=7, b=3725))",
    "util.OutputFormat('{a:>4} {b!P:>8}', headings={'a':'A','b':'B'}).format(I(a=7, b=0.125))",
    "util.OutputFormat('{zz}', headings={'a': 'A'})",
    "util.OutputFormat('sort:-a,b {a} {b}', headings={'a':'A','b':'B'}).get_format()",
    "util.OutputFormat('?:{a} {b:h}', headings={'a':'A','b':'B'}).filter([I(a='', b='')])",
    "util.OutputFormat('{a:<5.5+}|', headings={'a': 'A'}).format(I(a='abcdefgh'))",
    "ResourceCountSpecs()",
    "str(ResourceSet(RG) | ResourceSet(R4))", "ResourceSet(RG).union(ResourceSet(R4)).nodelist.expand()",
    "str(ResourceSet(R4).diff(ResourceSet(RG)))", "ResourceSet(R4).intersect(ResourceSet(RG)).nodelist.expand()",
    "ResourceSet(R4).get_properties()", "ResourceSet(R4).to_dict()", "ResourceSet(RG).to_dict()",
    "ResourceSet(RG).encode()", "ResourceSet().to_dict()", "str(ResourceSet())", "ResourceSet().nodelist.expand()",
    "help_text()", "help_text(argwidth=20)", "help_text(raw_description=True)",
    "events('raw')", "events('iso')", "events('offset')", "events('human')",
    "events('human', color='always')", "events('raw', color='always')", "events('reltime')",
    "[str(idset.IDset('0-3,5').encode(f)) for f in (0, 2, 4, 6)]",
    "hostlist.Hostlist('a[1-2]').append('b', ['c1', 'c2'], hostlist.Hostlist('d'))",
    "str(hostlist.Hostlist(['n1', 'n3']).uniq())", "hostlist.decode('n[1-3]').copy().expand()",
    "JobURI('')", "JobURI('local:///a').remote.startswith('ssh://')", "JobURI('x:/a').local",
    "str(JobURI('ssh://h/p'))", "JobURI('ssh://h/p').netloc",
    "f'{util.UtilDatetime(2021, 6, 10, 8, 0, 0):%b%d %R::>14}|'",
    "f'{util.UtilDatetime.fromtimestamp(0):%b%d::>6h}|'",
    "util.parse_datetime('2021-06-10 08:00', util.UtilDatetime(2021, 1, 1)).isoformat()",
    "util.parse_datetime('+2h', util.UtilDatetime(2021, 1, 1)).isoformat()",
    "util.parse_datetime('x1')", "util.parse_datetime('+1x')",
    "util.OutputFormat('{a:>10} {b:^6}', headings={'a':'A','b':'BB'}).header_format()",
    "util.OutputFormat('+:{a:>3} +:{b:<3.3} ?:{c}', headings={'a':'AAAA','b':'B','c':'C'})"
    ".filter([I(a=12345, b='xyzxyzxyz', c='-')])",
    "util.OutputFormat('{a}:{b}', headings={'a':'A','b':'B'}).copy(except_fields=['b']).get_format()",
    "sorted(util.OutputFormat('{a} {b} {a}', headings={'a':'A','b':'B'}).fields)",
    "util.OutputFormat('{a', headings={'a': 'A'})",
    "util.set_treedict({}, 'a.b', 1)", "[util.get_treedict({'a': 1}, 'a.b', 'd')]",
    "util.del_treedict({'a': {}}, 'a.b')",
]


def help_text(**kw):
    import io
    from flux.cli.argparse import FluxArgumentParser
    p = FluxArgumentParser(prog="flux-x", description="Do x.", **kw)
    p.add_argument("-n", "--ntasks", metavar="N", type=int, help="number of tasks")
    p.add_argument("-v", "--verbose", action="store_true", help="be chatty")
    p.add_argument("--states", hidden_aliases=("--state",), metavar="STATE,...",
                   help="list states")
    p.add_argument("--very-long-option-name-here", metavar="VALUE", help="a long one")
    g = p.add_argument_group("Extra options")
    g.add_argument("--plugins", action="append", help="plugins")
    p.add_argument("command", nargs="*", help="the command")
    buf = io.StringIO()
    p.print_help(buf)
    return buf.getvalue()


def events(fmt, **kw):
    entries = [{"timestamp": 1738774194.078433, "name": "submit", "context": {"userid": 1}},
               {"timestamp": 1738774194.5, "name": "exception",
                "context": {"type": "cancel", "severity": 0, "note": "x"}},
               {"timestamp": 1738774300.25, "name": "clean"}]
    evf = EventLogFormatter(timestamp_format=fmt, **kw)
    return [evf.format(e) for e in entries]


def directives(text):
    import io
    from flux.job.directives import DirectiveParser
    p = DirectiveParser(io.StringIO(text))
    return [(d.action, d.args, d.lineno) for d in p.directives if d.action != "NOOP"]


SCRIPTS = [
    "#!/bin/sh\n#FLUX: -N2\n#FLUX: --job-name=x\nhostname\n",
    "#!/bin/sh\n# flux: -n4 -c2  # comment\n#\n# flux: --env=A='b c'\nrun\n",
    "#!/usr/bin/env python3\n# flux: --setattr=user.conf=\"\"\"\n# flux: [a]\n"
    "# flux:   b = 1\n# flux: \"\"\"\nprint(1)\n",
    "#!/bin/sh\n#FLUX: -N2\nhostname\n#FLUX: -n1\n",
    "#!/bin/sh\n#FLUX: -N2\n# flux: -n2\n",
    "#!/bin/sh\n#FLUX: hostname\n",
    "#!/bin/sh\n#FLUX: --job-name='x\n",
    "#!/bin/sh\n-- flux: -n1\n-- text\n-- flux: -c2\n",
    "#!/bin/sh\necho no directives\n",
    "#!/bin/sh\n#flux:-N1\n#flux: -x \"\"\"a b\"\"\"\n",
]


def ResourceCountSpecs():  # noqa: N802
    from flux.resource.ResourceCount import ResourceCount
    out = []
    for spec in (1, "2", "3-7", "2+", "[4]", "1,3,9", {"min": 2, "max": 9, "operand": 3},
                 "2-32:2:*", "2-100:2:^", "0", "x", {"max": 3}, "5-2"):
        try:
            c = ResourceCount.from_count_spec(spec)
            out.append((c.min, c.max, None if c._values is None else str(c._values)))
        except Exception as exc:
            out.append(type(exc).__name__)
    return out


MORE += [f"directives({t!r})" for t in SCRIPTS]
CASES += MORE
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
