"""``flux.future``: flux-core's futures over fluxnb's handle.

A future is *ready* once fulfilled (a response arrived, ``fulfill()`` was called...).
``get()`` waits for it, running the handle's reactor meanwhile (so ``then()``
callbacks of other futures, timers and message watchers keep running);
``then(cb, *args, **kwargs)`` has the reactor call ``cb(future, *args, **kwargs)``
once it is ready; ``reset()`` readies a streaming future for its next fulfillment.
"""

import errno
import json
import os


class _Pimpl:
    """What flux-core code reaches as ``future.pimpl`` (fulfill only)."""

    def __init__(self, future):
        self._future = future

    def fulfill(self, result=None, free=None):
        self._future._set(result, None)

    def fulfill_error(self, errnum=errno.ENOENT, errstr=None):
        self._future._set(None, (errnum, errstr))


class Future:
    """A value that becomes available later (``flux_future_t``).

    ``Future(other)`` is a new reference to the same future.
    """

    def __init__(self, future_handle=None, prefixes=None, pimpl_t=None):
        self._src = future_handle if isinstance(future_handle, Future) else None
        self.flux_handle = getattr(future_handle, "flux_handle", None) \
            if self._src is not None else None
        self._ready = False
        self._value = None
        self._error = None
        self._then = None
        self._epoch = 0
        self._fired = -1
        self._inited = True

    # -- state (subclasses refine _poll / _reset) -------------------------------------
    def _root(self):
        return self._src._root() if self._src is not None else self

    def _poll(self):
        return self._ready

    def _set(self, value, error):
        root = self._root()
        root._value, root._error, root._ready = value, error, True

    def _init(self):
        root = self._root()
        if not root._inited:
            root._inited = True
            root._run_init()

    def _run_init(self):  # FutureExt
        pass

    def _raise(self):
        err = self._root()._error
        if err is not None:
            errnum, errstr = err
            raise OSError(errnum, errstr or os.strerror(errnum))

    def _multi(self):
        """True if this future may be fulfilled again after reset (a stream)."""
        return False

    # -- flux-core API --------------------------------------------------------------
    def is_ready(self):
        return self._root()._poll()

    def get_flux(self):
        root = self._root()
        if root.flux_handle is None:
            return None
        return root.flux_handle

    def set_flux(self, flux_handle):
        self._root().flux_handle = flux_handle

    def get_reactor(self):
        return self.get_flux()

    def wait_for(self, timeout=-1.0):
        """Wait until ready (``timeout`` seconds; < 0 forever); OSError ETIMEDOUT after."""
        if timeout is not None and not isinstance(timeout, (int, float)):
            raise TypeError("timeout must be a number of seconds")
        self._init()
        if self.is_ready():
            return self
        h = self.get_flux()
        if h is None or not timeout:
            raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
        h._run(until=self.is_ready, timeout=None if timeout is None or timeout < 0 else timeout)
        if not self.is_ready():
            raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
        return self

    def get(self):
        """Wait, then raise OSError if the future failed; the value (None for a plain future)."""
        self.wait_for()
        root = self._root()
        root._raise()
        return root._value

    def then(self, callback, *args, timeout=-1.0, **kwargs):
        """Have the reactor call ``callback(future, *args, **kwargs)`` when ready."""
        root = self._root()
        if root._then is not None:
            raise OSError(errno.EEXIST, "then: a continuation is already registered")
        h = self.get_flux()
        if h is None:
            raise OSError(errno.EINVAL, "then: future has no Flux handle (set_flux() it first)")
        if not callable(callback):
            raise TypeError("then: callback must be callable")
        root._then = (self, callback, args, kwargs)
        h._add_then(root)
        self._init()
        return self

    def stop(self):
        root = self._root()
        root._then = None
        h = self.get_flux()
        if h is not None:
            h._drop_then(root)

    def reset(self):
        root = self._root()
        root._ready = False
        root._value = root._error = None
        root._epoch += 1
        root._reset()

    def _reset(self):
        pass

    def error_string(self):
        if self._root() is not self:
            return self._root().error_string()
        err = self._error
        if err is None:
            return None
        return err[1] or os.strerror(err[0])

    def fulfill(self, result=None):
        self._set(result, None)

    def fulfill_error(self, errnum=errno.ENOENT, errstr=None):
        self._set(None, (errnum, errstr))

    @property
    def pimpl(self):
        return _Pimpl(self._root())

    def incref(self):
        pass

    def destroy(self):
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- for the reactor --------------------------------------------------------------
    def _due(self):
        """Ready and its continuation not yet run for this fulfillment."""
        return self._then is not None and self._fired != self._epoch and self._poll()

    def _fire(self):
        self._fired = self._epoch
        fut, cb, args, kwargs = self._then
        try:
            cb(fut, *args, **kwargs)
        except BaseException:
            # as flux-core: an uncaught exception stops the reactor (it propagates out of
            # reactor_run) and stops this future, so a restarted reactor neither calls the
            # failed callback again nor waits for it
            self.stop()
            raise

    def _active(self):
        """Still expected to call its continuation (counts for reactor_run)."""
        return self._then is not None and (self._fired != self._epoch or self._multi())


class WaitAllFuture(Future):
    """Ready when all its children are (``push(child)``)."""

    def __init__(self, children=None):
        super().__init__()
        self.children = {}
        for child in children or []:
            self.push(child)

    def push(self, child, name=None):
        if name is None:
            name = str(len(self.children))
        self.children[name] = child
        if self.flux_handle is None:
            self.flux_handle = child.get_flux()

    def _poll(self):
        return all(c.is_ready() for c in self.children.values())


class FutureExt(Future):
    """An empty future fulfilled from Python: ``init_cb(future)`` runs on the first
    ``get()`` or ``then()``; it (or later callbacks) call ``fulfill()``."""

    def __init__(self, init_cb, *args, flux_handle=None, **kw_args):
        super().__init__()
        if not callable(init_cb):
            raise TypeError("FutureExt: init_cb must be callable")
        self.init_cb = init_cb
        self.init_args = args
        self.init_kwargs = kw_args
        self._inited = False
        if flux_handle is not None:
            self.set_flux(flux_handle)

    def _run_init(self):
        self.init_cb(self, *self.init_args, **self.init_kwargs)

    def fulfill(self, result=None):
        json.dumps(result)  # flux-core stores it as JSON: refuse what it cannot encode
        self._set(result, None)

    def get(self):
        self._init()
        if self.get_flux() is None and not self.is_ready():
            raise OSError(errno.EINVAL, "FutureExt.get: no Flux handle (set_flux() it first)")
        return super().get()


__all__ = ["Future", "WaitAllFuture", "FutureExt"]
