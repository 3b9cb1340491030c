# SPDX-License-Identifier: Apache-2.0
# Shared data for the pytest suite: the classic study's 4 blobs and seeded Gaussian blobs.
import numpy as np
import pytest


def blobs(n=2000, d=4, k=5, seed=0, spread=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d))
    x = centers[rng.integers(0, k, size=n)] + rng.normal(0, spread, size=(n, d))
    return x.astype(dtype)


def classic_study(seed=2024):
    """Four Gaussian blobs in 3-D, 1000 points each (the classic k-means study)."""
    rng = np.random.default_rng(seed)
    means = np.array([[5, 5, 5], [4, 20, 20], [25, 20, 5], [30, 30, 30]], dtype=np.float64)
    sds = np.array([4.0, 3.0, 5.0, 5.0])
    return np.vstack([rng.normal(m, s, size=(1000, 3)) for m, s in zip(means, sds)])


@pytest.fixture
def x64():
    return blobs()


@pytest.fixture
def x32():
    return blobs(dtype=np.float32)
