"""``flux.core.inner``: flux-core's cffi layer. fluxnb has no C library; only ``ffi.NULL``
(as ``None``) is offered, so that code passing it to fluxnb's API still works."""


class _FFI:
    NULL = None

    def __getattr__(self, name):
        raise AttributeError(f"flux.core.inner.ffi.{name}: fluxnb's flux package has no C layer (cffi)")


ffi = _FFI()


def __getattr__(name):
    raise AttributeError(f"flux.core.inner.{name}: fluxnb's flux package has no C layer "
                         "(lib, raw handles)")
