# SPDX-License-Identifier: Apache-2.0
# Parity with sklearn.cluster.KMeans(algorithm="lloyd") from the same initial centroids: in
# float64 identical labels and inertia within 1e-9 relative; in float32 close agreement.
import numpy as np
import pytest

import kmeans
from conftest import blobs, classic_study

sklearn_cluster = pytest.importorskip("sklearn.cluster", reason="scikit-learn is not installed")
REL_TOL_F64 = 1e-9


def _cases():
    rng = np.random.default_rng(11)
    out = [("classic study", classic_study(), 4, 50, 0.0)]
    for n, d, k, spread, max_iter, tol in [
        (3000, 2, 3, 1.0, 300, 1e-4),
        (5000, 8, 10, 3.0, 100, 0.0),
        (2000, 30, 6, 5.0, 300, 1e-6),
        (500, 3, 40, 1.0, 300, 1e-4),
    ]:
        out.append(
            (
                "n=%d d=%d k=%d" % (n, d, k),
                blobs(n=n, d=d, k=max(2, k // 2), spread=spread, seed=int(rng.integers(1 << 30))),
                k,
                max_iter,
                tol,
            )
        )
    return out


CASES = _cases()


def _init(x, k, seed=0):
    return x[np.random.default_rng(seed).choice(len(x), size=k, replace=False)]


def _sk(x, init, max_iter, tol, sample_weight=None):
    sk = sklearn_cluster.KMeans(
        n_clusters=len(init), init=init, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd"
    )
    return sk.fit(x, sample_weight=sample_weight)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("name, x, k, max_iter, tol", CASES, ids=[c[0] for c in CASES])
def test_float64_matches_scikit_learn(name, x, k, max_iter, tol, backend):
    init = _init(x, k)
    sk = _sk(x, init, max_iter, tol)
    ours = kmeans.KMeans(k, init=init, max_iter=max_iter, tol=tol, backend=backend).fit(x)
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.inertia_ == pytest.approx(sk.inertia_, rel=REL_TOL_F64, abs=0)
    assert ours.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(x), sk.predict(x))
    np.testing.assert_allclose(ours.transform(x), sk.transform(x), rtol=1e-9, atol=1e-9)
    assert ours.score(x) == pytest.approx(sk.score(x), rel=REL_TOL_F64)


def test_weighted_float64_matches_scikit_learn():
    x = blobs(n=4000, d=5, k=6, seed=21)
    w = np.random.default_rng(1).uniform(0.1, 3.0, size=len(x))
    init = _init(x, 6)
    sk = _sk(x, init, 300, 1e-4, sample_weight=w)
    ours = kmeans.KMeans(6, init=init).fit(x, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.inertia_ == pytest.approx(sk.inertia_, rel=REL_TOL_F64)
    assert ours.score(x, sample_weight=w) == pytest.approx(
        sk.score(x, sample_weight=w), rel=REL_TOL_F64
    )


def test_float32_agrees_closely_with_scikit_learn():
    x = blobs(n=20000, d=8, k=8, spread=2.0, seed=5, dtype=np.float32)
    init = _init(x, 8)
    sk = _sk(x, init, 300, 1e-4)
    ours = kmeans.KMeans(8, init=init).fit(x)
    assert ours.cluster_centers_.dtype == sk.cluster_centers_.dtype == np.float32
    assert (ours.labels_ == sk.labels_).mean() > 0.999
    assert ours.inertia_ == pytest.approx(sk.inertia_, rel=1e-4)
