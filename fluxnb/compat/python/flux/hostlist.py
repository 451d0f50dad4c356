"""``flux.hostlist``: flux-core's ``Hostlist`` (RFC 29) over fluxnb's Hostlist."""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from fluxnb.runtime.util.hostlist import Hostlist as _Hostlist

__all__ = ["Hostlist", "decode"]


class Hostlist(_Hostlist):
    """An ordered list of hosts, from an RFC 29 string or an iterable of them.

    >>> hl = Hostlist(["foo1", "foo2"])
    >>> str(hl), hl[1], hl.index("foo2")
    ('foo[1-2]', 'foo2', [1])
    """

    __slots__ = ()

    def __init__(self, arg="", handle=None):
        super().__init__()
        if handle is not None:
            arg = handle
        if isinstance(arg, _Hostlist):
            self._add(arg)
        elif isinstance(arg, str):
            self._add(arg)
        elif isinstance(arg, Iterable):
            for hosts in arg:
                if not isinstance(hosts, str):
                    raise TypeError(
                        f"Hostlist(): expected string or Iterable, got {type(hosts)}")
                self._add(hosts)
        else:
            raise TypeError(f"Hostlist(): expected string or Iterable, got {type(arg)}")

    def _add(self, hosts) -> int:
        if isinstance(hosts, str):
            try:
                hosts = _Hostlist.decode(hosts, product=False)  # as flux-core
            except ValueError:
                raise ValueError(f"Invalid hostlist: '{hosts}'") from None
        return _Hostlist.append(self, hosts)

    def append(self, *args):
        """Append each argument (a Hostlist or anything ``Hostlist()`` takes);
        return how many hosts were appended."""
        return sum(self._add(a if isinstance(a, _Hostlist) else Hostlist(a))
                   for a in args)

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral):
            return _Hostlist.__getitem__(self, int(index))
        if isinstance(index, slice):
            return Hostlist(self.expand()[index])
        if isinstance(index, Iterable) and not isinstance(index, str):
            hosts = []
            for n in index:
                if not isinstance(n, numbers.Integral):
                    raise TypeError(f"Invalid Hostlist index '{n}'")
                hosts.append(self[n])
            return Hostlist(hosts)
        raise TypeError("Hostlist index must be integer or slice")

    def __contains__(self, name):
        return isinstance(name, str) and _Hostlist.find(self, name) >= 0

    def find(self, host):
        """Position of ``host``; FileNotFoundError if it is not in the list."""
        i = _Hostlist.find(self, host)
        if i < 0:
            raise FileNotFoundError(f"host '{host}' not found")
        return i

    def index(self, hosts, ignore_nomatch=False):
        """Positions of each of ``hosts``; FileNotFoundError naming the hosts
        not found unless ``ignore_nomatch``."""
        if not isinstance(hosts, _Hostlist):
            hosts = Hostlist(hosts)
        ids, notfound = [], Hostlist()
        for host in hosts:
            i = _Hostlist.find(self, host)
            if i < 0:
                notfound.append(host)
            else:
                ids.append(i)
        if notfound and not ignore_nomatch:
            suffix = "s" if len(notfound) > 1 else ""
            raise FileNotFoundError(f"host{suffix} '{notfound}' not found")
        return ids

    def delete(self, hosts):
        return _Hostlist.delete(self, Hostlist(str(hosts)))

    def copy(self):
        return Hostlist(self)


def decode(arg):
    """Decode an RFC 29 string (or iterable of them) into a Hostlist."""
    return Hostlist(arg)
