"""``flux.core.watchers``: reactor watchers (timers, signals, fds, messages) of a handle."""

import errno
import fnmatch
import signal as _signal
import time



class Watcher:
    """A watcher of a handle's reactor; ``start()``/``stop()``, usable as a context manager."""

    def __init__(self, flux_handle, handle=None):
        self.flux_handle = flux_handle
        self.handle = self
        self.active = False
        self.referenced = True
        flux_handle.add_watcher(self)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.active = True
        return self

    def stop(self):
        self.active = False
        return self

    def ref(self):
        self.referenced = True
        return self

    def unref(self):
        self.referenced = False
        return self

    def destroy(self):
        if self.flux_handle is not None:
            self.stop()
            self.flux_handle.del_watcher(self)

    def is_active(self):
        return self.active


class TimerWatcher(Watcher):
    """Calls ``callback(handle, watcher, revents, args)`` ``after`` seconds, then every ``repeat``."""

    def __init__(self, flux_handle, after, callback, repeat=0, args=None):
        if not isinstance(after, (int, float)) or after < 0:
            raise OSError(errno.EINVAL, f"timer: invalid timeout {after!r}")
        if not isinstance(repeat, (int, float)) or repeat < 0:
            raise OSError(errno.EINVAL, f"timer: invalid repeat {repeat!r}")
        self.after, self.repeat = float(after), float(repeat)
        self.callback, self.args = callback, args
        self.deadline = None
        super().__init__(flux_handle)

    def start(self):
        self.deadline = time.monotonic() + self.after
        return super().start()

    def reset(self, after=None, repeat=None):
        if after is not None:
            self.after = float(after)
        if repeat is not None:
            self.repeat = float(repeat)
        if self.active:
            self.deadline = time.monotonic() + self.after

    def _fire(self):
        if self.repeat > 0:
            self.deadline = time.monotonic() + self.repeat
        else:
            self.active = False
        self.callback(self.flux_handle, self, 0, self.args)


class FDWatcher(Watcher):
    """Calls ``callback(handle, watcher, fd, revents, args)`` when ``fd`` is ready."""

    def __init__(self, flux_handle, fd_int, events, callback, args=None):
        if not isinstance(fd_int, int) or fd_int < 0:
            raise OSError(errno.EINVAL, f"fd watcher: invalid file descriptor {fd_int!r}")
        self.fd, self.events, self.callback, self.args = fd_int, events, callback, args
        super().__init__(flux_handle)

    def _fire(self, revents):
        self.callback(self.flux_handle, self, self.fd, revents, self.args)


class SignalWatcher(Watcher):
    """Calls ``callback(handle, watcher, signum, args)`` when the process gets ``signum``."""

    def __init__(self, flux_handle, signal_int, callback, args=None):
        if not isinstance(signal_int, int) or signal_int not in _signal.valid_signals() \
                or signal_int in (_signal.SIGKILL, _signal.SIGSTOP):
            raise OSError(errno.EINVAL, f"signal watcher: invalid signal {signal_int!r}")
        self.signum, self.callback, self.args = signal_int, callback, args
        self._old = None
        super().__init__(flux_handle)

    def start(self):
        if not self.active:
            try:
                self._old = _signal.signal(self.signum, self._caught)
            except ValueError:  # not the main thread: nothing can be caught here
                self._old = None
        return super().start()

    def stop(self):
        if self.active and self._old is not None:
            try:
                _signal.signal(self.signum, self._old)
            except (ValueError, TypeError):
                pass
            self._old = None
        return super().stop()

    def _caught(self, signum, frame):
        self.flux_handle._signals.append(self)

    def _fire(self):
        self.callback(self.flux_handle, self, self.signum, self.args)


class PrepareWatcher(Watcher):
    """Calls ``callback(handle, watcher, revents, args)`` before the reactor waits."""

    def __init__(self, flux_handle, callback, args=None):
        self.callback, self.args = callback, args
        super().__init__(flux_handle)

    def _fire(self):
        self.callback(self.flux_handle, self, 0, self.args)


class CheckWatcher(PrepareWatcher):
    """Calls ``callback(handle, watcher, revents, args)`` after the reactor waited."""


class IdleWatcher(PrepareWatcher):
    """Keeps the reactor from blocking while active; calls ``callback`` each loop."""

    def __init__(self, flux_handle, callback=None, args=None):
        super().__init__(flux_handle, callback, args)

    def _fire(self):
        if self.callback is not None:
            super()._fire()


class MessageWatcher(Watcher):
    """Calls ``callback(handle, watcher, msg, args)`` for each message matching
    ``type_mask`` and ``topic_glob`` (a request to a service the handle registered,
    an event it subscribed to, a response nothing else waits for)."""

    def __init__(self, flux_handle, type_mask, callback, topic_glob="*", match_tag=0,
                 rolemask=None, args=None):
        if isinstance(topic_glob, bytes):
            topic_glob = topic_glob.decode("utf-8")
        if topic_glob is None:
            topic_glob = "*"
        if not isinstance(topic_glob, str):
            raise TypeError("msg watcher: topic_glob must be str or bytes")
        self.type_mask, self.callback, self.topic_glob = type_mask, callback, topic_glob
        self.match_tag, self.rolemask, self.args = match_tag, rolemask, args
        super().__init__(flux_handle)

    def matches(self, msg):
        return bool(msg.type & self.type_mask) and fnmatch.fnmatchcase(msg.topic, self.topic_glob) \
            and (not self.match_tag or msg.matchtag == self.match_tag)

    def _fire(self, msg):
        from flux.message import Message
        self.callback(self.flux_handle, self, Message(handle=msg), self.args)


__all__ = ["Watcher", "TimerWatcher", "FDWatcher", "SignalWatcher", "PrepareWatcher",
           "CheckWatcher", "IdleWatcher", "MessageWatcher"]
