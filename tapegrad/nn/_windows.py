"""Index maps of sliding windows, shared by convolution, pooling and padding.

Convolution and pooling are gathers followed by ordinary ops (matmul, sum):
the gather is one ``IndexBackward0`` record whose backward is the tape's
scatter-add, so their gradients are exact without any new primitive.  The maps
depend only on shapes and hyper-parameters, so they are computed once and cached.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def ntuple(value, n: int, name: str = "argument") -> tuple[int, ...]:
    """``value`` as an n-tuple of ints (PyTorch's ``_pair``/``_single``)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return (int(value[0]),) * n
        if len(value) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} "
                               f"values to match the convolution dimensions, but got "
                               f"{name}={list(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def out_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
             ceil_mode: bool = False) -> int:
    """Output length of a window sweep (PyTorch's pooling_output_shape)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:  # the last window must start inside the input
            out -= 1
        return out
    return span // stride + 1


@lru_cache(maxsize=256)
def window_offsets(spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                   padding: tuple[int, ...], dilation: tuple[int, ...],
                   out: tuple[int, ...]) -> np.ndarray:
    """(L, K) flat offsets into a C-ordered plane of shape ``spatial``.

    Row l is output position l (C order over ``out``), column k the k-th window
    element (C order over ``kernel``); -1 marks elements in the padding.
    """
    nd = len(spatial)
    plane_strides = [math.prod(spatial[d + 1:]) for d in range(nd)]
    offsets = np.zeros(out + kernel, dtype=np.int64)
    valid = np.ones(out + kernel, dtype=bool)
    for d in range(nd):
        pos = (np.arange(out[d])[:, None] * stride[d] - padding[d]
               + np.arange(kernel[d])[None, :] * dilation[d])
        shape = [1] * (2 * nd)
        shape[d] = out[d]
        shape[nd + d] = kernel[d]
        pos = pos.reshape(shape)
        valid = valid & (pos >= 0) & (pos < spatial[d])
        offsets = offsets + pos * plane_strides[d]
    offsets = np.where(valid, offsets, -1).reshape(math.prod(out), math.prod(kernel))
    offsets.flags.writeable = False
    return offsets


@lru_cache(maxsize=32)
def im2col_index(batch: int, channels: int, groups: int, spatial: tuple[int, ...],
                 kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
                 dilation: tuple[int, ...], out: tuple[int, ...]) -> np.ndarray:
    """Flat offsets into a batch of inputs ``(batch, channels, *spatial)`` laid out as the
    convolution's columns: shape ``(groups, batch * L, channels // groups * K)``, row
    ``n * L + l`` holding output position l of sample n, column ``c * K + k`` the k-th window
    element of the group's channel c.  Padding maps to ``batch * channels * plane``, one past
    the end (the caller appends a zero there)."""
    plane = math.prod(spatial)
    win = window_offsets(spatial, kernel, stride, padding, dilation, out)  # (L, K)
    length, k = win.shape
    cg = channels // groups
    sample = np.arange(batch)[:, None, None, None] * (channels * plane)
    channel = np.arange(channels).reshape(groups, 1, 1, cg, 1) * plane
    idx = np.where(win[None, None, :, None, :] >= 0,
                   sample[None] + channel + win[None, None, :, None, :],
                   batch * channels * plane)  # (groups, batch, L, cg, K)
    idx = idx.reshape(groups, batch * length, cg * k)
    idx.flags.writeable = False
    return idx


def pad_sources(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output position along one padded dimension, its source index (-1: the fill).

    The caller has checked that reflect pads are shorter than ``size`` and circular pads
    at most ``size`` (PyTorch's limits)."""
    pos = np.arange(-before, size + after)
    if mode == "constant":
        return np.where((pos >= 0) & (pos < size), pos, -1)
    if mode == "reflect":
        period = 2 * (size - 1) if size > 1 else 1
        r = np.abs(pos) % period
        return np.where(r < size, r, period - r)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1)
    if mode == "circular":
        return pos % size
    raise NotImplementedError(f"Unrecognised padding mode {mode}")
