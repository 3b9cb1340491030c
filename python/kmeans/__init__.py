# SPDX-License-Identifier: Apache-2.0
"""kmeans: Lloyd k-means on NVIDIA GPUs with a fast multithreaded CPU fallback.

``kmeans.KMeans`` is a scikit-learn style estimator over the C++ library (``fit``, ``predict``,
``transform``, ``score``, ...); ``kmeans.MiniBatchKMeans`` is scikit-learn's MiniBatchKMeans
(``fit``, ``partial_fit``, ...) over its mini-batch k-means. NumPy float32/float64
C-contiguous arrays are used in place; CUDA arrays (CuPy, PyTorch) go to the GPU in place.
"""

try:
    from . import _core
except ImportError as e:  # pragma: no cover - a broken install
    raise ImportError(
        "kmeans: the compiled core (kmeans._core) could not be loaded: %s. Reinstall with "
        "'pip install .' from the source tree." % e
    ) from e

from ._estimator import IterationInfo, KMeans
from ._minibatch import MiniBatchKMeans

__version__ = _core.version()


def cuda_available():
    """(available, reason): whether the CUDA backend is compiled in and a usable GPU exists."""
    ok, why = _core.cuda_available()
    return bool(ok), ("" if ok else why)


def built_with_cuda():
    """True when this build of kmeans contains the CUDA backend."""
    return bool(_core.with_cuda)


__all__ = ["KMeans", "MiniBatchKMeans", "IterationInfo", "cuda_available", "built_with_cuda", "__version__"]
