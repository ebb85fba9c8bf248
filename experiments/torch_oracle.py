"""PyTorch and torchvision as numerical oracles (tests, comparison scripts).

The registry's torchvision wheel is a CUDA build; on the CPU-only torch it fails to import
because two operator schemas it registers fakes for (``nms``, ``qnms``) live in its missing
C++ extension.  Declaring those schemas first makes the pure-Python models importable.
"""

from __future__ import annotations

import sys

_LIBRARIES: list = []


def import_torchvision():
    """``(torch, torchvision)``, importable on a CPU-only torch; ImportError when absent."""
    import torch

    if not _LIBRARIES and "torchvision" not in sys.modules:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIBRARIES.append(lib)  # the schemas live as long as the Library object
    import torchvision

    return torch, torchvision
