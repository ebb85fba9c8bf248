"""PyTorch and torchvision as numerical oracles, imported only where installed (the import
itself, with its CPU-torch workaround, is :mod:`experiments.torch_oracle`)."""

from __future__ import annotations

import importlib.util

import pytest

from experiments.torch_oracle import import_torchvision


def torchvision():
    """``(torch, torchvision)``, or skip the calling test when they are not installed."""
    pytest.importorskip("torch")
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision not installed")
    return import_torchvision()

