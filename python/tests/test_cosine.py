# SPDX-License-Identifier: Apache-2.0
# KMeans(metric="cosine"): spherical k-means from Python against a NumPy oracle, scale
# invariance, transform / score, errors and model files.
import numpy as np
import pytest

import kmeans


def directions(n=1200, d=64, k=4, seed=0, spread=0.6, dtype=np.float64):
    """Embedding-like rows: k random directions plus noise, each row at a random norm."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(k, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    truth = np.arange(n) % k
    x = c[truth] + spread * rng.normal(size=(n, d)) / np.sqrt(d)
    x *= rng.uniform(0.5, 4.0, size=(n, 1))
    return x.astype(dtype), truth


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_fit_is_spherical_kmeans(dtype, backend):
    x, truth = directions(dtype=dtype)
    km = kmeans.KMeans(4, metric="cosine", n_init=3, random_state=1, backend=backend).fit(x)
    c = km.cluster_centers_.astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-6)
    sim = unit(x) @ c.T
    np.testing.assert_array_equal(km.labels_, sim.argmax(axis=1))
    inertia = float(np.sum(1.0 - sim.max(axis=1)))
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    assert km.inertia_ == pytest.approx(inertia, rel=rtol)
    # each cluster is one generating direction
    for j in range(4):
        assert len(set(truth[km.labels_ == j])) == 1
    # the unit mean of each cluster is its centroid (Lloyd's fixed point on the sphere)
    for j in range(4):
        m = unit(x)[km.labels_ == j].sum(axis=0)
        np.testing.assert_allclose(c[j], m / np.linalg.norm(m), atol=1e-5 if dtype == np.float32 else 1e-12)
    assert km.score(x) == pytest.approx(-km.inertia_, rel=rtol)
    t = km.transform(x)
    assert t.dtype == dtype and t.shape == (x.shape[0], 4)
    np.testing.assert_allclose(t, 1.0 - sim, atol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_array_equal(km.predict(x), km.labels_)


def test_only_directions_matter():
    x, _ = directions(d=384, n=600, k=3, seed=4)
    scales = 2.0 ** np.random.default_rng(1).integers(-20, 20, size=(x.shape[0], 1))
    a = kmeans.KMeans(3, metric="cosine", random_state=0, backend="cpu").fit(x)
    b = kmeans.KMeans(3, metric="cosine", random_state=0, backend="cpu").fit(x * scales)
    assert a.cluster_centers_.tobytes() == b.cluster_centers_.tobytes()
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_


def test_euclidean_stays_the_default():
    x, _ = directions(n=300, d=8, seed=2)
    km = kmeans.KMeans(4, random_state=0, backend="cpu").fit(x)
    assert km.get_params()["metric"] == "euclidean"
    assert np.linalg.norm(km.cluster_centers_, axis=1).max() > 1.1  # not on the sphere
    d = np.sqrt(((x[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(km.transform(x), d, rtol=1e-10)


def test_zero_row_and_bad_metric_raise():
    x, _ = directions(n=50, d=5, seed=3)
    x[7] = 0
    with pytest.raises(ValueError, match="metric = cosine: data row 7 has zero norm"):
        kmeans.KMeans(2, metric="cosine", backend="cpu").fit(x)
    kmeans.KMeans(2, backend="cpu").fit(x)  # Euclidean takes it
    with pytest.raises(ValueError, match="metric = 'manhattan' is not one of"):
        kmeans.KMeans(2, metric="manhattan").fit(x)
    good, _ = directions(n=50, d=5, seed=3)
    km = kmeans.KMeans(2, metric="cosine", backend="cpu").fit(good)
    with pytest.raises(ValueError, match="data row 7 has zero norm"):
        km.predict(x)


def test_model_file_keeps_the_metric(tmp_path):
    x, _ = directions(n=400, d=16, seed=5, dtype=np.float32)
    km = kmeans.KMeans(4, metric="cosine", random_state=2, backend="cpu").fit(x)
    path = tmp_path / "m.kmeans"
    km.save(path)
    back = kmeans.KMeans.load(path)
    assert back.get_params()["metric"] == "cosine"
    np.testing.assert_array_equal(back.predict(x), km.labels_)
    assert back.transform(x).tobytes() == km.transform(x).tobytes()
    assert back.score(x) == km.score(x)
