"""Layers with PyTorch's exact semantics, so imported torchvision weights give torch's numbers.

Flax's own pooling and convolution padding differ from torch in the corners that matter here:
torch pads max-pooling with -inf and can round output sizes up (Caffe's ``ceil_mode``),
``AdaptiveAvgPool2d`` uses overlapping bins, and ``LocalResponseNorm`` averages over a
channel window.  Everything is NHWC.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

_LECUN = nnx.initializers.lecun_normal()


def conv(in_ch: int, out_ch: int, kernel: int, *, stride: int = 1, padding: int = 0,
         groups: int = 1, bias: bool = True, rngs: nnx.Rngs,
         kernel_init=_LECUN) -> nnx.Conv:
    """A ``torch.nn.Conv2d`` with symmetric explicit padding."""
    return nnx.Conv(in_ch, out_ch, (kernel, kernel), strides=stride,
                    padding=((padding, padding), (padding, padding)),
                    feature_group_count=groups, use_bias=bias, kernel_init=kernel_init,
                    rngs=rngs)


def batch_norm(channels: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """``torch.nn.BatchNorm2d`` defaults: eps 1e-5, momentum 0.1 (Flax counts it as 0.9)."""
    return nnx.BatchNorm(channels, momentum=0.9, epsilon=1e-5, rngs=rngs)


class ReLU(nnx.Module):
    def __call__(self, x):
        return jax.nn.relu(x)


class Flatten(nnx.Module):
    """``torch.flatten(x, 1)`` of an NHWC map, in torch's channel-major (C, H, W) order so
    that fully connected weights import unchanged."""

    def __call__(self, x):
        if x.ndim == 4:
            x = jnp.transpose(x, (0, 3, 1, 2))
        return x.reshape(x.shape[0], -1)


def _pool_output(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """torch's pooling output size, including its rule that the last window must start
    inside the (left-padded) input."""
    span = size + 2 * padding - kernel
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise ValueError(f"max pooling (kernel {kernel}, stride {stride}) needs an input of at "
                         f"least {kernel - 2 * padding} pixels; got {size} (input image too small)")
    return out


class MaxPool(nnx.Module):
    """``torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode)``."""

    def __init__(self, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False):
        self.kernel, self.stride, self.padding, self.ceil_mode = kernel, stride, padding, ceil_mode

    def __call__(self, x):
        pads = [(0, 0)]
        for size in x.shape[1:3]:
            out = _pool_output(size, self.kernel, self.stride, self.padding, self.ceil_mode)
            extra = (out - 1) * self.stride + self.kernel - size - 2 * self.padding
            pads.append((self.padding, self.padding + max(extra, 0)))
        pads.append((0, 0))
        window = (1, self.kernel, self.kernel, 1)
        strides = (1, self.stride, self.stride, 1)
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, pads)


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
    """(out, size) averaging weights of torch's adaptive pooling bins
    [floor(i*size/out), ceil((i+1)*size/out))."""
    weights = np.zeros((out, size), np.float32)
    for i in range(out):
        start, stop = (i * size) // out, -((-(i + 1) * size) // out)
        weights[i, start:stop] = 1.0 / (stop - start)
    return weights


class AdaptiveAvgPool(nnx.Module):
    """``torch.nn.AdaptiveAvgPool2d(output)`` as two small averaging matrices (exact, static)."""

    def __init__(self, output: int):
        self.output = output

    def __call__(self, x):
        h, w = x.shape[1:3]
        if (h, w) == (self.output, self.output):
            return x
        rows = jnp.asarray(_adaptive_matrix(h, self.output), x.dtype)
        cols = jnp.asarray(_adaptive_matrix(w, self.output), x.dtype)
        return jnp.einsum("nhwc,ih,jw->nijc", x, rows, cols)


class GlobalAvgPool(nnx.Module):
    """``AdaptiveAvgPool2d((1, 1))``: the mean over space, kept as a 1×1 map."""

    def __call__(self, x):
        return jnp.mean(x, axis=(1, 2), keepdims=True)


class LocalResponseNorm(nnx.Module):
    """``torch.nn.LocalResponseNorm`` (= Caffe's across-channel LRN):
    x / (k + alpha/size · Σ_window x²)^beta over a window of ``size`` channels."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def __call__(self, x):
        pads = ((0, 0), (0, 0), (0, 0), (self.size // 2, (self.size - 1) // 2))
        sums = jax.lax.reduce_window(x * x, 0.0, jax.lax.add, (1, 1, 1, self.size),
                                     (1, 1, 1, 1), pads)
        return x / (self.k + self.alpha / self.size * sums) ** self.beta
