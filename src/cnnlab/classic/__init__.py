"""Classic (pre-CNN) computer vision: linear filtering, HoG, GIST and a linear-classifier baseline.

Filtering is re-exported here; HoG and GIST live in their modules, whose names the functions
share (``from cnnlab.classic.hog import hog``, ``from cnnlab.classic.gist import gist``).

>>> from cnnlab.classic import filter2d, get_kernel
>>> edges = filter2d(image, get_kernel("sobel-x"), border="reflect")   # doctest: +SKIP
"""

from cnnlab.classic.filters import (
    BORDERS,
    filter2d,
    gradient_magnitude,
    gradient_orientation,
    gradients,
)
from cnnlab.classic.kernels import NAMED_KERNELS, Kernel, get_kernel

__all__ = [
    "BORDERS",
    "NAMED_KERNELS",
    "Kernel",
    "filter2d",
    "get_kernel",
    "gradient_magnitude",
    "gradient_orientation",
    "gradients",
]
