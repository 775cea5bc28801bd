"""Devices and contexts."""

from __future__ import annotations

import ctypes
import json
import threading
import weakref
from typing import Any

from . import _library as L

__all__ = ["Context", "default_context", "devices", "kernels"]


class _Owned:
    """Something that owns one library handle, released by ``close()`` (or on collection)."""

    _kind = "object"

    def __init__(self, handle: int, keep: tuple[Any, ...] = ()) -> None:
        self._handle = handle
        self._keep = keep
        self._finalizer = weakref.finalize(self, _release, handle)

    @property
    def handle(self) -> int:
        """The C handle (``ng_handle``), for passing this object to other C code."""
        if self._handle == 0:
            raise ValueError(f"this {self._kind} was released (close() was called); create a new one")
        return self._handle

    def close(self) -> None:
        """Releases the library object now; using this object afterwards raises ``ValueError``."""
        if self._handle != 0:
            self._finalizer()
            self._handle = 0

    def __enter__(self):  # noqa: D105
        return self

    def __exit__(self, *exc_info: object) -> None:  # noqa: D105
        self.close()


def _release(handle: int) -> None:
    L.lib().ng_release(handle)


class Context(_Owned):
    """An OpenCL device with its queue and compiled-kernel cache.

    ``selector``: an index from :func:`devices`, ``"gpu"``, ``"cpu"``, or part of a device
    name; ``None`` uses ``$NGRAD_DEVICE``, else the first GPU, else the first CPU device.
    Objects created in one context keep it alive. A context may be shared by threads.
    """

    _kind = "context"

    def __init__(self, selector: str | int | None = None) -> None:
        handle = ctypes.c_uint64()
        text = None if selector is None else str(selector).encode()
        L.call(L.lib().ng_context_create(text, ctypes.byref(handle)))
        super().__init__(handle.value)

    @property
    def device(self) -> dict[str, Any]:
        """The device's properties (as in :func:`devices`)."""
        out = ctypes.c_void_p()
        L.call(L.lib().ng_context_device_json(self.handle, ctypes.byref(out)))
        return json.loads(L.take_string(out))

    def __repr__(self) -> str:
        return f"Context({self.device['name']!r})" if self._handle else "Context(released)"


_default: Context | None = None
_default_lock = threading.Lock()


def default_context() -> Context:
    """The context used when none is given (created on first use, then shared)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Context()
    return _default


def devices() -> list[dict[str, Any]]:
    """Every OpenCL device, as ``ngrad devices --json`` lists them (``isDefault`` marks the
    one a context without a selector uses)."""
    out = ctypes.c_void_p()
    L.call(L.lib().ng_devices_json(ctypes.byref(out)))
    return json.loads(L.take_string(out))


def kernels(context: Context | None = None) -> list[dict[str, Any]]:
    """Compiles every kernel family for the context's device (float, and double where
    supported) and describes each kernel, as ``ngrad kernels --json`` does."""
    context = context or default_context()
    out = ctypes.c_void_p()
    L.call(L.lib().ng_kernels_json(context.handle, ctypes.byref(out)))
    return json.loads(L.take_string(out))
