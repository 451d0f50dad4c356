"""RFC 19 Flux Locally Unique IDs (FLUIDs) and their string encodings.

A FLUID is a 64-bit integer laid out as (RFC 19, flux-core ``fluid.c``)::

    | timestamp: 40 bits (ms since the instance epoch) | generator id: 14 | seq: 10 |

so ids from one generator sort by creation time. :class:`FluidGenerator`
makes them; :class:`JobID` is an ``int`` that parses and prints every string
form Flux uses (F58, hex, dothex, kvs, words, decimal).

Examples
--------
>>> JobID(1234).f58plain
'fNH'
>>> JobID("ƒNH") == JobID("0x4d2") == JobID("job.0000.0000.0000.04d2") == 1234
True
>>> JobID(1).words
'acrobat-academy-academy--academy-academy-academy'
"""

from __future__ import annotations

import os
import re
import threading
import time

from fluxnb.runtime.job._mnemonic_words import MN_BASE, WORD_INDEX, WORDS

__all__ = [
    "JobID",
    "FluidGenerator",
    "id_parse",
    "id_encode",
    "F58_ALPHABET",
    "TS_BITS",
    "ID_BITS",
    "SEQ_BITS",
]

TS_BITS = 40
ID_BITS = 14
SEQ_BITS = 10
MAX_ID = (1 << 64) - 1

F58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_F58_VALUE = {c: i for i, c in enumerate(F58_ALPHABET)}
_F58_PREFIX = "ƒ"
_F58_ASCII_PREFIX = "f"
_F58_MAX_DIGITS = 12  # 58**11 < 2**64 <= 58**12

_DOTHEX_RE = re.compile(r"^[0-9a-fA-F]{1,4}(?:\.[0-9a-fA-F]{1,4}){3}$")
_HEX_RE = re.compile(r"^0[xX][0-9a-fA-F]+$")
_DEC_RE = re.compile(r"^[0-9]+$")

ENCODINGS = ("dec", "hex", "dothex", "kvs", "words", "f58", "f58plain", "emoji")


def _use_ascii_prefix() -> bool:
    """True if F58 ids should print with ``f`` rather than ``ƒ``.

    Mirrors flux-core: ``FLUX_F58_FORCE_ASCII`` set in the environment, or a
    locale whose character encoding is not UTF-8, selects the ASCII prefix.
    """
    if os.environ.get("FLUX_F58_FORCE_ASCII"):
        return True
    import codecs   # loaded at start-up already
    import locale   # here: only ids printed as F58 need it (argparse has loaded it then)
    encoding = locale.getpreferredencoding(False) or "ascii"
    try:
        return codecs.lookup(encoding).name != "utf-8"
    except LookupError:
        return True


def _f58_digits(value: int) -> str:
    if value == 0:
        return F58_ALPHABET[0]
    out = []
    while value:
        value, rem = divmod(value, 58)
        out.append(F58_ALPHABET[rem])
    return "".join(reversed(out))


def _words_encode(value: int) -> str:
    # Mnemonic encoding of the id's 8 little-endian bytes: two 32-bit groups,
    # each written as three base-1626 digits, least significant first.
    words = []
    for group in (value & 0xFFFFFFFF, value >> 32):
        for _ in range(3):
            group, digit = divmod(group, MN_BASE)
            words.append(WORDS[digit])
    return "-".join(words[:3]) + "--" + "-".join(words[3:])


def _invalid(s: str, why: str) -> ValueError:
    return ValueError(f"invalid job id {s!r}: {why}")


def _words_decode(orig: str, s: str) -> int:
    tokens = [t.lower() for t in re.split(r"[^A-Za-z]+", s) if t]
    if len(tokens) != 6:
        raise _invalid(orig, f"a words id has 6 words, found {len(tokens)}")
    value = 0
    for group_index in range(2):
        group = 0
        for k, word in enumerate(tokens[3 * group_index : 3 * group_index + 3]):
            index = WORD_INDEX.get(word)
            if index is None:
                raise _invalid(orig, f"unknown word {word!r}")
            if index >= MN_BASE:
                raise _invalid(orig, f"word {word!r} cannot appear in a 64-bit id")
            group += index * MN_BASE**k
        if group > 0xFFFFFFFF:
            raise _invalid(orig, "words do not encode a 64-bit value")
        value |= group << (32 * group_index)
    return value


def _f58_decode(orig: str, digits: str) -> int:
    if not digits:
        raise _invalid(orig, "F58 prefix with no digits")
    if len(digits) > _F58_MAX_DIGITS:
        raise _invalid(orig, f"F58 ids have at most {_F58_MAX_DIGITS} digits")
    value = 0
    for ch in digits:
        digit = _F58_VALUE.get(ch)
        if digit is None:
            hint = " (F58 does not use 0, O, I or l)" if ch in "0OIl" else ""
            raise _invalid(orig, f"{ch!r} is not an F58 digit{hint}")
        value = value * 58 + digit
    if value > MAX_ID:
        raise _invalid(orig, "value does not fit in 64 bits")
    return value


def id_parse(s: str) -> int:
    """Parse any RFC 19 job id string to an integer.

    Accepted forms, detected the way flux-core's ``fluid_parse()`` does
    (``.`` means dothex, ``-`` means words, then the F58 prefix):

    - F58: ``ƒ`` or ``f`` followed by base58 digits (``ƒNH``, ``fNH``)
    - dothex ``0000.0000.0000.04d2`` and kvs ``job.0000.0000.0000.04d2``
    - words ``academy-academy-academy--academy-academy-academy``
    - hex ``0x4d2`` and decimal ``1234``

    Raises
    ------
    ValueError
        Naming the string and what is wrong with it.

    Examples
    --------
    >>> id_parse("fNH"), id_parse("1234"), id_parse("0000.0000.0000.04d2")
    (1234, 1234, 1234)
    >>> id_parse("f0")
    Traceback (most recent call last):
    ...
    ValueError: invalid job id 'f0': '0' is not an F58 digit (F58 does not use 0, O, I or l)
    """
    if not isinstance(s, str):
        raise TypeError(f"job id must be a str or int, not {type(s).__name__}")
    p = s.strip()
    if not p:
        raise _invalid(s, "empty string")
    if p.startswith("job."):
        p = p[4:]
    if "." in p:
        if not _DOTHEX_RE.match(p):
            raise _invalid(s, "dothex ids are four dot-separated groups of 1-4 hex digits")
        a, b, c, d = (int(x, 16) for x in p.split("."))
        return (a << 48) | (b << 32) | (c << 16) | d
    if "-" in p:
        return _words_decode(s, p)
    if p.startswith(_F58_PREFIX):
        return _f58_decode(s, p[len(_F58_PREFIX) :])
    if p.startswith(_F58_ASCII_PREFIX):
        return _f58_decode(s, p[len(_F58_ASCII_PREFIX) :])
    if p[:1] >= "\U0001F000":  # emoji: all 576 digits are U+1F3xx..U+1F6xx
        return _emoji_decode(s, p)
    if _HEX_RE.match(p):
        value = int(p, 16)
    elif _DEC_RE.match(p):
        value = int(p, 10)
    else:
        raise _invalid(s, "not an F58, hex, dothex, kvs, words or decimal id")
    if value > MAX_ID:
        raise _invalid(s, "value does not fit in 64 bits")
    return value


def kvs_dothex(value: int) -> str:
    """``xxxx.xxxx.xxxx.xxxx``: the dotted hex form of an id (RFC 19), computed directly."""
    return "%04x.%04x.%04x.%04x" % ((value >> 48) & 0xFFFF, (value >> 32) & 0xFFFF,
                                    (value >> 16) & 0xFFFF, value & 0xFFFF)


def kvs_dir(value: int) -> str:
    """``job.xxxx.xxxx.xxxx.xxxx``: the job's KVS directory (hot path of the job manager)."""
    return "job." + kvs_dothex(value)


def _emoji_encode(value: int) -> str:
    from ._basemoji import EMOJI
    digits = []
    while True:
        value, rem = divmod(value, 576)
        digits.append(EMOJI[rem])
        if not value:
            return "".join(reversed(digits))


def _emoji_decode(orig: str, s: str) -> int:
    from ._basemoji import EMOJI
    value = 0
    for ch in s:
        i = EMOJI.find(ch)
        if i < 0:
            raise _invalid(orig, f"{ch!r} is not one of the 576 emoji digits")
        value = value * 576 + i
    if value > MAX_ID:
        raise _invalid(orig, "value does not fit in 64 bits")
    return value


def id_encode(jobid: int, encoding: str = "f58") -> str:
    """Encode integer ``jobid`` as one of :data:`ENCODINGS`.

    Examples
    --------
    >>> id_encode(1234, "hex"), id_encode(1234, "kvs")
    ('0x4d2', 'job.0000.0000.0000.04d2')
    """
    value = int(jobid)
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"job id {value} is out of range (0 to 2**64-1)")
    enc = encoding.lower()
    if enc == "dec":
        return str(value)
    if enc == "hex":
        return f"0x{value:x}"
    if enc in ("dothex", "kvs"):
        return kvs_dothex(value) if enc == "dothex" else kvs_dir(value)
    if enc == "words":
        return _words_encode(value)
    if enc == "emoji":
        return _emoji_encode(value)
    if enc == "f58plain":
        return _F58_ASCII_PREFIX + _f58_digits(value)
    if enc == "f58":
        prefix = _F58_ASCII_PREFIX if _use_ascii_prefix() else _F58_PREFIX
        return prefix + _f58_digits(value)
    raise ValueError(f"unknown job id encoding {encoding!r}; use one of {ENCODINGS}")


class JobID(int):
    """A Flux job id: an ``int`` that parses and prints RFC 19 encodings.

    Like flux-core's ``flux.job.JobID``, it may be built from an int, another
    JobID, or any string form accepted by :func:`id_parse`; ``str()`` gives
    the F58 form.

    Parameters
    ----------
    value : int or str
        The id, ``0 <= id < 2**64``.

    Examples
    --------
    >>> jobid = JobID("fuzzybunny")
    >>> int(jobid), jobid.hex, jobid.dothex
    (6787342413402046, '0x181d0d4d850fbe', '0018.1d0d.4d85.0fbe')
    >>> repr(jobid)
    'JobID(6787342413402046)'
    """

    orig_str: str

    def __new__(cls, value: int | str) -> JobID:
        if isinstance(value, bool):
            raise TypeError("job id must be a str or int, not bool")
        if isinstance(value, int):
            jobid = int(value)
            if not 0 <= jobid <= MAX_ID:
                raise ValueError(f"invalid job id {value!r}: out of range 0 to 2**64-1")
        else:
            jobid = id_parse(value)
        self = super().__new__(cls, jobid)
        self.orig_str = str(int(value)) if isinstance(value, int) else value
        return self

    def encode(self, encoding: str = "dec") -> str:
        """Return this id in ``encoding`` (one of :data:`ENCODINGS`)."""
        return id_encode(self, encoding)

    @property
    def dec(self) -> str:
        """Decimal string form."""
        return self.encode("dec")

    @property
    def f58(self) -> str:
        """F58 form with ``ƒ`` (or ``f`` in an ASCII locale or when forced)."""
        return self.encode("f58")

    @property
    def f58plain(self) -> str:
        """F58 form with the ASCII ``f`` prefix, whatever the locale."""
        return self.encode("f58plain")

    @property
    def hex(self) -> str:  # type: ignore[override]
        """``0x``-prefixed hexadecimal form."""
        return self.encode("hex")

    @property
    def dothex(self) -> str:
        """Dotted hex form ``xxxx.xxxx.xxxx.xxxx``."""
        return self.encode("dothex")

    @property
    def kvs(self) -> str:
        """KVS directory of the job, ``job.<dothex>``."""
        return self.encode("kvs")

    @property
    def words(self) -> str:
        """Mnemonic form, six words."""
        return self.encode("words")

    @property
    def emoji(self) -> str:
        """Emoji form (base 576, RFC 19)."""
        return self.encode("emoji")

    @property
    def orig(self) -> str:
        """The string this JobID was created from."""
        return self.orig_str

    def __str__(self) -> str:
        return self.f58

    def __repr__(self) -> str:
        return f"JobID({int(self)})"

    def __reduce__(self):
        return (JobID, (int(self),))


class FluidGenerator:
    """Generate unique, increasing RFC 19 FLUIDs.

    Parameters
    ----------
    gen_id : int
        Generator id, ``0 <= gen_id < 2**14`` (flux uses the broker rank).
    start_timestamp : int
        Milliseconds since the instance epoch at which this generator starts
        counting (flux-core resumes from the timestamp saved at shutdown).
    floor : int, optional
        The last id issued before a restart. Every id generated is greater
        than ``floor`` even if the clock went backwards.
    clock : callable, optional
        Monotonic millisecond clock, for tests.

    Notes
    -----
    Only 1024 ids fit in one millisecond. When a millisecond is used up the
    generator borrows the next one (the timestamp runs ahead of the clock)
    rather than busy-waiting as flux-core does; ids stay unique and
    increasing and the clock catches up when the burst ends.

    Examples
    --------
    >>> gen = FluidGenerator(gen_id=3, start_timestamp=1000)
    >>> a, b = gen.next(), gen.next()
    >>> a < b and FluidGenerator.decompose(a)[1] == 3
    True
    """

    def __init__(
        self,
        gen_id: int = 0,
        start_timestamp: int = 0,
        floor: int | None = None,
        clock=None,
    ) -> None:
        if not 0 <= gen_id < (1 << ID_BITS):
            raise ValueError(f"generator id {gen_id} out of range 0..{(1 << ID_BITS) - 1}")
        if not 0 <= start_timestamp < (1 << TS_BITS):
            raise ValueError(f"start_timestamp {start_timestamp} out of range")
        self.gen_id = gen_id
        self._clock = clock or (lambda: time.monotonic_ns() // 1_000_000)
        self._clock_zero = self._clock()
        self._offset = start_timestamp
        self._timestamp = start_timestamp
        self._seq = 0
        self._lock = threading.Lock()
        if floor is not None:
            self.resume(floor)

    @staticmethod
    def compose(timestamp: int, gen_id: int, seq: int) -> int:
        """Pack the three fields into a FLUID."""
        return (timestamp << (ID_BITS + SEQ_BITS)) | (gen_id << SEQ_BITS) | seq

    @staticmethod
    def decompose(fluid: int) -> tuple[int, int, int]:
        """Return ``(timestamp, generator id, sequence)`` of ``fluid``."""
        return (
            fluid >> (ID_BITS + SEQ_BITS),
            (fluid >> SEQ_BITS) & ((1 << ID_BITS) - 1),
            fluid & ((1 << SEQ_BITS) - 1),
        )

    def resume(self, floor: int) -> None:
        """Ensure every later id is greater than ``floor`` (the last id used)."""
        ts, floor_gen, seq = self.decompose(int(floor))
        # Smallest (timestamp, seq) whose id with our generator id beats floor.
        if self.gen_id > floor_gen:
            candidate = (ts, seq)
        elif self.gen_id == floor_gen:
            candidate = (ts, seq + 1)
        else:
            candidate = (ts + 1, 0)
        with self._lock:
            if candidate > (self._timestamp, self._seq):
                self._timestamp, self._seq = candidate
                self._normalize()

    @property
    def timestamp(self) -> int:
        """The current timestamp; save it to resume with ``start_timestamp``."""
        with self._lock:
            self._update()
            return self._timestamp

    def _normalize(self) -> None:
        if self._seq >= (1 << SEQ_BITS):
            self._timestamp += 1
            self._seq = 0

    def _update(self) -> None:
        now = self._clock() - self._clock_zero + self._offset
        if now > self._timestamp:
            self._timestamp = now
            self._seq = 0

    def next(self) -> int:
        """Return the next FLUID."""
        with self._lock:
            self._update()
            self._normalize()
            if self._timestamp >= (1 << TS_BITS):
                raise OverflowError("FLUID timestamp space exhausted")
            fluid = self.compose(self._timestamp, self.gen_id, self._seq)
            self._seq += 1
            return fluid

    __next__ = next

    def __iter__(self):
        return self
