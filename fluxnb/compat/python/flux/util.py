"""``flux.util``: flux-core's command-line helpers (output formats, trees,
durations, dates, dotted-key dicts), over fluxnb's own where it has them."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import stat
import sys
from datetime import datetime, timedelta

from fluxnb.cli import jobinfo_format as _jf
from fluxnb.runtime.util import fsd as _fsd

__all__ = [
    "ColorAction", "DisplayValue", "OutputFormat", "Tree", "UtilDatetime",
    "del_treedict", "fsd", "get_treedict", "parse_datetime", "parse_fsd",
    "set_treedict", "empty_outputs", "Fileref", "dict_merge", "encode_payload",
    "encode_topic", "help_formatter", "YesNoAction", "TreedictAction",
]


# -- durations and dates ----------------------------------------------------
def parse_fsd(fsd_string):
    """Seconds in an RFC 23 duration (``"1.5m"`` -> 90.0); ValueError if invalid."""
    return _fsd.parse_fsd(fsd_string)


def fsd(secs):
    """A duration in seconds as flux prints it (``90`` -> ``"1.5m"``)."""
    return _jf.fsd(secs)


def empty_outputs():
    return _jf._empty_outputs()


class UtilDatetime(_jf._Datetime):
    """A datetime whose format spec may end in ``::WIDTH`` (and ``h`` for
    ``-`` when unset); the epoch formats as empty."""


_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
    "%Y-%m-%d", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%b %d, %Y %I%p",
    "%b %d, %Y %I:%M%p", "%b %d, %Y %H:%M", "%b %d, %Y", "%b %d %Y", "%H:%M:%S", "%H:%M",
)


_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hr": 3600, "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RELDAY = {"today": 0, "tomorrow": 1, "yesterday": -1}


def _clock(word):
    """``noon``, ``midnight``, ``8am``, ``5:30pm``, ``17:00`` -> (hour, minute)."""
    if word in ("noon", "midnight"):
        return (12, 0) if word == "noon" else (0, 0)
    m = re.fullmatch(r"(\d{1,2})(?::(\d\d))?\s*(am|pm)?", word)
    if not m or (not m.group(2) and not m.group(3)):
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if m.group(3):
        hour = hour % 12 + (12 if m.group(3) == "pm" else 0)
    return (hour, minute) if hour < 24 and minute < 60 else None


def _natural_datetime(string, now):
    """The common English forms (``in 10 min``, ``2 hours ago``,
    ``tomorrow``, ``noon tomorrow``, ``last wed``); None if not one."""
    text = " ".join(string.lower().split())
    m = re.fullmatch(r"(?:in )?(\d+(?:\.\d+)?) ?([a-z]+?)s?( ago| from now)?", text)
    if m and m.group(2) in _UNITS and (text.startswith("in ") or m.group(3)):
        delta = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
        return now - delta if m.group(3) == " ago" else now + delta
    day, clock = None, (0, 0)
    words = text.split()
    rest = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _RELDAY and day is None:
            day = now.date() + timedelta(days=_RELDAY[w])
        elif w in ("last", "next") and i + 1 < len(words) and words[i + 1][:3] in _DAYS \
                and day is None:
            target = _DAYS.index(words[i + 1][:3])
            delta = (now.weekday() - target) % 7 or 7
            day = now.date() + timedelta(days=-delta if w == "last" else (7 - delta) or 7)
            i += 1
        elif _clock(w) is not None:
            clock = _clock(w)
        else:
            rest.append(w)
        i += 1
    if rest or (day is None and clock == (0, 0) and "midnight" not in words):
        return None
    day = day or now.date()
    return datetime(day.year, day.month, day.day, *clock)


def parse_datetime(string, now=None):
    """Parse ``now``, ``+FSD``/``-FSD`` (relative to ``now``) or a date and
    time; returns an aware datetime. Common English forms (``tomorrow``,
    ``in 10 min``, ``last wed``) are read here; other natural language needs
    the optional ``parsedatetime`` package, as in flux-core."""
    if now is None:
        now = datetime.now()
    if string == "now":
        return now.astimezone()
    if string[:1] in "+-":
        return (now + timedelta(seconds=float(string[0] + str(parse_fsd(string[1:]))))
                ).astimezone()
    for fmt in _DATE_FORMATS:
        try:
            dt = datetime.strptime(string, fmt)
        except ValueError:
            continue
        if "%Y" not in fmt:
            dt = dt.replace(year=now.year, month=now.month, day=now.day)
        return dt.astimezone()
    dt = _natural_datetime(string, now)
    if dt is not None:
        return dt.astimezone()
    try:
        import parsedatetime  # optional, as in flux-core
    except ImportError:
        raise ValueError(f"Invalid datetime: '{string}'") from None
    cal = parsedatetime.Calendar()
    dt, status = cal.parseDT(string, sourceTime=now)
    if status == 0:
        raise ValueError(f"Invalid datetime: '{string}'")
    return dt.astimezone()


# -- dotted-key dicts -------------------------------------------------------
def get_treedict(in_dict, key, default=None):
    """``in_dict["a"]["b"]`` for key ``"a.b"``, or ``default``."""
    *path, last = key.split(".")
    for part in path:
        in_dict = in_dict.get(part, {})
    return in_dict.get(last, default)


def set_treedict(in_dict, key, val):
    """Set ``in_dict["a"]["b"] = val`` for key ``"a.b"``, making dicts on the way."""
    *path, last = key.split(".")
    for part in path:
        if not isinstance(in_dict.get(part), dict):
            in_dict[part] = {}
        in_dict = in_dict[part]
    in_dict[last] = val


def del_treedict(in_dict, key, remove_empty=False):
    """Delete dotted ``key`` (KeyError if missing); with ``remove_empty``
    also drop the dicts left empty on the way."""
    parts = key.split(".")
    chain = [in_dict]
    for part in parts[:-1]:
        nxt = chain[-1][part]
        if not isinstance(nxt, dict):
            raise KeyError(key)
        chain.append(nxt)
    del chain[-1][parts[-1]]
    if remove_empty:
        for parent, part in zip(reversed(chain[:-1]), reversed(parts[:-1])):
            if parent[part]:
                break
            del parent[part]


# -- argparse actions -------------------------------------------------------
class _When(str):
    @property
    def enabled(self):
        if self == "always":
            return True
        if self == "never":
            return False
        return sys.stdout.isatty()


class ColorAction(argparse.Action):
    """``--color[=WHEN]`` with WHEN ``always``, ``never`` or ``auto``; the
    value has ``.enabled``. Default ``auto``, or ``never`` if ``NO_COLOR``."""

    def __init__(self, option_strings, dest, nargs="?", default=None,
                 const="always", choices=("always", "never", "auto"), **kwargs):
        if default is None:
            default = _When("never" if os.environ.get("NO_COLOR") else "auto")
        super().__init__(option_strings, dest, nargs=nargs, default=default,
                         const=const, choices=choices, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, _When(values))


# -- sortable display values -------------------------------------------------
class DisplayValue:
    """A field value compared the way flux listings sort: unset (None, "",
    "-") first, then numbers (numeric strings included), then strings."""

    EMPTY, NUMERIC, STRING = 0, 1, 2

    def __init__(self, value):
        self.value = value
        if value is None or value == "" or value == "-":
            self._type_order, self._sort_value = self.EMPTY, 0
        elif isinstance(value, (bool, int, float)):
            self._type_order, self._sort_value = self.NUMERIC, float(value)
        else:
            try:
                self._type_order, self._sort_value = self.NUMERIC, float(str(value))
            except ValueError:
                self._type_order, self._sort_value = self.STRING, str(value)

    def _key(self):
        return (self._type_order, self._sort_value)

    def __lt__(self, other):
        return self._key() < other._key()

    def __eq__(self, other):
        return isinstance(other, DisplayValue) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"DisplayValue({self.value!r})"


# -- output formats ---------------------------------------------------------
_SORT_PREFIX = re.compile(r"^sort:(\S*)\s*")


class OutputFormat(_jf.OutputFormat):
    """A flux output format string over items with attributes, with
    ``?:`` (drop if empty), ``+:`` (widen), ``!d``/``!F``/... conversions and
    an optional leading ``sort:KEY[,-KEY]`` prefix."""

    def __init__(self, fmt, headings=None, prepend="0."):
        m = _SORT_PREFIX.match(fmt)
        self.sort_keys = []
        if m:
            self.set_sort_keys(m.group(1))
            fmt = fmt[m.end():]
        self.prepend = prepend
        super().__init__(fmt, headings=headings)

    @property
    def fields(self):
        """Field names, each once, in order."""
        return list(dict.fromkeys(super().fields))

    def _render(self, items, prefix):
        return "".join(self._tuple(t, f, s, c, prefix=prefix) for t, f, s, c in items)

    def get_format_prepended(self, prepend, include_sort_prefix=True):
        text = self._render(self.items, prepend)
        if include_sort_prefix and self.sort_keys:
            text = "sort:" + ",".join(self.sort_keys) + " " + text
        return text

    def get_format(self, include_sort_prefix=True):
        return self.get_format_prepended(self.prepend, include_sort_prefix)

    def header_format(self):
        parts = []
        for text, field, spec, _ in self.items:
            align, width, _ = _jf._align_width(spec)
            parts.append(self._tuple(text, field, f"{align}{width}", "", prefix=""))
        return "".join(parts)

    def filter(self, items, no_header=False):
        """The format with ``?:`` fields empty in all ``items`` removed and
        ``+:`` fields widened, as a format string."""
        return self._render(super().filter(list(items), no_header).items, "")

    def copy(self, except_fields=None, nullify_expansion=False):
        """A copy, without ``except_fields``; ``nullify_expansion`` drops the
        spec of ``+:`` fields."""
        except_fields = set(except_fields or ())
        out = []
        for text, field, spec, conv in self.items:
            if field in except_fields:
                text = re.sub(r"(\?\+:|\?:|\+:)$", "", text)
                if text.strip():  # literal text stays; spacing goes with the field
                    out.append([text, "", "", ""])
                continue
            if nullify_expansion and re.search(r"\+:$", text):
                text, spec = re.sub(r"(\?\+:|\+:)$", "", text), ""
            out.append([text, field, spec, conv])
        fmt = self._render(out, "")
        if self.sort_keys:
            fmt = "sort:" + ",".join(self.sort_keys) + " " + fmt
        return type(self)(fmt, headings=self.headings, prepend=self.prepend)

    def set_sort_keys(self, keys):
        self.sort_keys = [k.strip() for k in keys.split(",") if k.strip()]

    def sort_items(self, items):
        """Sort ``items`` in place by the sort keys (``-key`` descending)."""
        for key in reversed(self.sort_keys):
            rev = key.startswith("-")
            name = key.lstrip("-")
            items.sort(key=lambda i, n=name: DisplayValue(getattr(i, n, None)), reverse=rev)

    def print_items(self, items, no_header=False, pre=None, post=None):
        items = list(items)
        self.sort_items(items)
        fmt = type(self)(self.filter(items, no_header), headings=self.headings)
        if not no_header:
            print(fmt.header())
        for item in items:
            line = fmt.format(item)
            if line and not line.isspace():
                print(line)


# -- trees ------------------------------------------------------------------
_STYLES = {
    "box": ("├── ", "└── ", "│   ", "    "),
    "compact": ("├─", "└─", "│ ", "  "),
    "ascii": ("|-- ", "`-- ", "|   ", "    "),
}


class Tree:
    """A labelled tree printed like ``pstree``; with ``combine_children``,
    like leaf children show once as ``N*[label]``."""

    def __init__(self, label, prefix="", combine_children=False):
        self.label = label
        self.prefix = prefix
        self.combine_children = combine_children
        self.children = []
        self.duplicate_count = 1

    def _find_leaf(self, label, prefix):
        for child in self.children:
            if not child.children and child.label == label and child.prefix == prefix:
                return child
        return None

    def add(self, label, prefix="", combine_children=False):
        tree = Tree(label, prefix=prefix, combine_children=combine_children)
        self.children.append(tree)
        return tree

    def append(self, label, prefix=""):
        """Add a child labelled ``label`` and return it (an existing like
        leaf, counted once more, when combining)."""
        if self.combine_children:
            same = self._find_leaf(label, prefix)
            if same is not None:
                same.increment()
                return same
        return self.add(label, prefix, combine_children=self.combine_children)

    def append_tree(self, tree):
        if self.combine_children and not tree.children:
            same = self._find_leaf(tree.label, tree.prefix)
            if same is not None:
                same.increment()
                return same
        self.children.append(tree)
        return tree

    def increment(self):
        self.duplicate_count += 1

    def _text(self):
        label = self.label
        if self.duplicate_count > 1:
            label = f"{self.duplicate_count}*[{label}]"
        return f"{self.prefix} {label}" if self.prefix else label

    def _lines(self, style, level, depth, lead, out):
        if level is not None and depth >= level:
            return
        tee, corner, bar, blank = style
        for i, child in enumerate(self.children):
            last = i == len(self.children) - 1
            out.append(lead + (corner if last else tee) + child._text())
            child._lines(style, level, depth + 1, lead + (blank if last else bar), out)

    def render(self, style="box", level=None, skip_root=False, truncate=True):
        """Print the tree to stdout; ``level`` limits the depth shown and
        ``truncate`` cuts lines at the terminal width with ``+``."""
        if style not in _STYLES:
            raise ValueError(f"invalid tree style '{style}' (use box, compact or ascii)")
        out = []
        roots = self.children if skip_root else [self]
        for root in roots:
            out.append(root._text())
            root._lines(_STYLES[style], level, 0, "", out)
        cols = shutil.get_terminal_size().columns
        for line in out:
            if truncate and len(line) > cols:
                line = line[: cols - 1] + "+"
            print(line)


# -- RFC 37 file references -------------------------------------------------
class Fileref(dict):
    """An RFC 37 file object (a dict): from a dict (JSON content), from
    already encoded ``data`` with ``encoding`` (``utf-8`` or ``base64``), or
    from the path of a file (utf-8 if it decodes, else base64)."""

    def __init__(self, data, perms=0o600, encoding=None):
        ref = {"mode": perms | stat.S_IFREG}
        if isinstance(data, dict):
            ref["data"] = data
        elif encoding is not None:
            if encoding not in ("base64", "utf-8"):
                raise ValueError(f"invalid encoding: {encoding} (use utf-8 or base64)")
            ref["data"], ref["encoding"] = data, encoding
        else:
            st = os.stat(data)
            ref["size"], ref["mode"] = st.st_size, st.st_mode
            with open(data, "rb") as f:
                raw = f.read()
            try:
                ref["data"], ref["encoding"] = raw.decode("utf-8"), "utf-8"
            except UnicodeError:
                ref["data"], ref["encoding"] = base64.b64encode(raw).decode(), "base64"
        super().__init__(ref)


# -- small helpers ------------------------------------------------------------
def dict_merge(src, new):
    """Merge ``new`` into ``src`` recursively (nested dicts merge); return src."""
    for key, val in new.items():
        if isinstance(val, dict) and isinstance(src.get(key), dict):
            dict_merge(src[key], val)
        else:
            src[key] = val
    return src


def encode_payload(payload):
    """A message payload as bytes: str and bytes as they are, else JSON."""
    if payload is None or isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload).encode("utf-8")


def encode_topic(topic):
    """A topic string as bytes (str or bytes); TypeError otherwise."""
    if isinstance(topic, bytes):
        return topic
    if isinstance(topic, str):
        return topic.encode("utf-8")
    raise TypeError(f"topic must be a str or bytes, not {type(topic).__name__}")


def help_formatter(argwidth=40, raw_description=False):
    """A formatter class for argparse with flux's help layout."""
    from flux.cli.argparse import FluxHelpFormatter, FluxRawDescriptionHelpFormatter
    base = FluxRawDescriptionHelpFormatter if raw_description else FluxHelpFormatter

    class _Formatter(base):
        def __init__(self, prog):
            super().__init__(prog, max_help_position=argwidth)

    return _Formatter


class YesNoAction(argparse.Action):
    """``--foo`` / ``--no-foo`` as one boolean option."""

    def __init__(self, option_strings, dest, default=None, required=False, help=None):
        strings = []
        for opt in option_strings:
            strings.append(opt)
            if opt.startswith("--"):
                strings.append("--no-" + opt[2:])
        super().__init__(strings, dest, nargs=0, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


class TreedictAction(argparse.Action):
    """``--opt key.sub=value`` options gathered into a nested dict (values
    parsed as JSON when they are, else kept as strings)."""

    def __call__(self, parser, namespace, values, option_string=None):
        result = getattr(namespace, self.dest, None) or {}
        for arg in values if isinstance(values, list) else [values]:
            for item in arg.split(","):
                key, _, val = item.partition("=")
                try:
                    val = json.loads(val) if val else 1
                except ValueError:
                    pass
                set_treedict(result, key, val)
        setattr(namespace, self.dest, result)
