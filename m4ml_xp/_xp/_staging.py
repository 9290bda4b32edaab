"""Staging host chunks onto a GPU through reused page-locked (pinned) buffers.

A host-to-device copy from pinned memory runs asynchronously, so the next chunk
is read or generated on the host while the device copies and computes the
previous one; two buffers used in turn keep that overlap without reallocating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_cupy_namespace,
    is_numpy_array,
    is_torch_namespace,
)

from m4ml_xp._xp._namespaces import Array, Namespace


def to_device_chunks(chunks: Iterable[Any], xp: Namespace, dev: Any = None) -> Iterator[Array]:
    """Return the chunks as arrays of `xp` on `dev`, in order.

    Host (NumPy / memmap) chunks bound for a CUDA device are staged through the two
    pinned buffers, each refilled while the device may still read the other; other
    chunks go through ``xp.asarray``.
    """
    stage, slots = None, None
    if is_cupy_namespace(xp):
        stage, slots = _cupy_pinned_stage(dev)
    elif is_torch_namespace(xp):
        # without `dev`: torch's default device, which ``torch.set_default_device`` may make a GPU
        torch_dev = dev if dev is not None else device(xp.empty(0))
        if getattr(torch_dev, "type", str(torch_dev)) == "cuda":
            stage, slots = _torch_pinned_stage(torch_dev)
    try:
        for chunk in chunks:
            if dev is None and is_array_api_obj(chunk) and array_namespace(chunk) is xp:
                yield chunk  # already there (torch: no asarray warning for requires_grad)
            elif stage is None or (is_array_api_obj(chunk) and not is_numpy_array(chunk)):
                yield xp.asarray(chunk, device=dev) if dev is not None else xp.asarray(chunk)
            else:
                yield stage(chunk)
    finally:
        if slots is not None:  # the buffers outlive no copy still reading them
            slots.drain()


class _PinnedSlots:
    """Two page-locked host buffers used in turn.

    A buffer is refilled only after the device copy out of it has finished (the event left
    in ``pending``).
    """

    def __init__(self, allocate: Callable[[int, Any], Any], fill: Callable[[Any, Any], Any]):
        self.allocate, self.fill = allocate, fill
        self.buffers: list[tuple[Any, Any] | None] = [None, None]  # (NumPy dtype, buffer)
        self.pending: list[Any] = [None, None]
        self.turn = 0

    def take(self, host: Any) -> tuple[int, Any]:
        """Return the next slot and a pinned view shaped like the NumPy array `host`, filled with it."""
        slot, self.turn = self.turn, 1 - self.turn
        if self.pending[slot] is not None:
            self.pending[slot].synchronize()
        held = self.buffers[slot]
        if held is None or held[0] != host.dtype or held[1].shape[0] < host.size:
            held = self.buffers[slot] = (host.dtype, self.allocate(host.size, host.dtype))
        view = held[1][: host.size].reshape(host.shape)
        self.fill(view, host)
        return slot, view

    def drain(self) -> None:
        """Wait for every copy still reading a buffer."""
        for event in self.pending:
            if event is not None:
                event.synchronize()


def _cupy_pinned_stage(dev: Any) -> tuple[Callable[[Any], Array], _PinnedSlots]:
    import contextlib

    import cupy
    import cupyx
    import numpy as np

    slots = _PinnedSlots(
        lambda n, dtype: cupyx.empty_pinned((n,), dtype=dtype),
        lambda view, host: np.copyto(view, host),
    )

    def stage(chunk: Any) -> Array:
        slot, view = slots.take(np.asarray(chunk))
        with dev if dev is not None else contextlib.nullcontext():
            moved = cupy.asarray(view, blocking=False)  # asynchronous from pinned memory
            done = cupy.cuda.Event()
            done.record()
        slots.pending[slot] = done
        return moved

    return stage, slots


def _torch_pinned_stage(dev: Any) -> tuple[Callable[[Any], Array], _PinnedSlots]:
    import numpy as np
    import torch

    def allocate(n: int, dtype: Any) -> Any:
        # page-locked from the start: ``from_numpy(np.empty(n)).pin_memory()`` also wrote n
        # pageable bytes and copied them over
        torch_dtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype).newbyteorder("="))).dtype
        # device="cpu": under ``torch.set_default_device("cuda")`` empty() would be on the GPU
        return torch.empty((n,), dtype=torch_dtype, device="cpu", pin_memory=True)

    # The fill is CuPy's: NumPy copies into the pinned buffer's NumPy view.  ``torch.from_numpy``
    # of a read-only chunk (a memmap opened "r") warns, an error where warnings are errors.
    slots = _PinnedSlots(allocate, lambda view, host: np.copyto(view.numpy(), host))

    def stage(chunk: Any) -> Array:
        slot, view = slots.take(np.asarray(chunk))
        moved = view.to(dev, non_blocking=True)  # asynchronous from pinned memory
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(dev))
        slots.pending[slot] = done
        return moved

    return stage, slots
