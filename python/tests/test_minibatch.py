# SPDX-License-Identifier: Apache-2.0
# kmeans.MiniBatchKMeans: params, fitted attributes, partial_fit against the library's fit and
# the CLI, pickling and model files mid-stream, errors, and scikit-learn's MiniBatchKMeans.
import json
import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest

import kmeans
from conftest import blobs

MASK = (1 << 64) - 1


class SplitMix64:
    """The library's portable generator (src/internal.hpp), to draw the batches a fit draws."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def indices(self, n, m):
        """draw_indices (src/minibatch.hpp): floor(u * n) for m uniforms u of 53 bits."""
        out = []
        for _ in range(m):
            j = int((self.next() >> 11) * 2.0**-53 * n)
            out.append(min(j, n - 1))
        return np.array(out)


def test_defaults_are_scikit_learns_names_and_values():
    p = kmeans.MiniBatchKMeans().get_params()
    assert p == dict(
        n_clusters=8,
        init="k-means++",
        max_iter=100,
        batch_size=1024,
        tol=0.0,
        max_no_improvement=10,
        n_init="auto",
        reassignment_ratio=0.01,
        random_state=None,
        metric="euclidean",
        backend="auto",
        n_threads=None,
        verbose=False,
        callback=None,
        output="numpy",
    )
    cluster = pytest.importorskip("sklearn.cluster")
    theirs = cluster.MiniBatchKMeans().get_params()
    for name in ("n_clusters", "init", "max_iter", "batch_size", "tol", "max_no_improvement",
                 "n_init", "reassignment_ratio", "random_state"):
        if not (name == "n_init" and theirs[name] == "warn"):  # scikit-learn 1.2-1.3: "warn"
            assert p[name] == theirs[name], name
    assert not isinstance(kmeans.MiniBatchKMeans(), kmeans.KMeans)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fitted_attributes(dtype):
    x = blobs(n=3000, d=3, k=5, seed=1, dtype=dtype)
    km = kmeans.MiniBatchKMeans(5, batch_size=200, random_state=2, backend="cpu").fit(x)
    assert km.cluster_centers_.shape == (5, 3) and km.cluster_centers_.dtype == dtype
    assert km.labels_.shape == (3000,) and km.labels_.dtype == np.int32
    np.testing.assert_array_equal(km.labels_, km.predict(x))  # labels of the whole data
    sse = ((x.astype(np.float64) - km.cluster_centers_[km.labels_]) ** 2).sum()
    assert km.inertia_ == pytest.approx(sse, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert km.score(x) == pytest.approx(-km.inertia_, rel=1e-6)
    assert 1 <= km.n_steps_ <= 100 * 3000 // 200
    assert km.n_iter_ == -(-km.n_steps_ * 200 // 3000)  # epochs begun, as scikit-learn
    assert km.sse_history_.shape == (km.n_steps_,)
    assert km.cluster_sizes_.sum() == 3000 and km.backend_ == "cpu"
    assert km.transform(x).shape == (3000, 5)
    np.testing.assert_array_equal(
        kmeans.MiniBatchKMeans(5, batch_size=200, random_state=2, backend="cpu").fit_predict(x),
        km.labels_,
    )


def test_same_seed_same_bits_whatever_the_thread_count(x32):
    a = kmeans.MiniBatchKMeans(5, batch_size=100, random_state=4, n_threads=1).fit(x32)
    b = kmeans.MiniBatchKMeans(5, batch_size=100, random_state=4, n_threads=2).fit(x32)
    assert a.cluster_centers_.tobytes() == b.cluster_centers_.tobytes()
    assert a.n_steps_ == b.n_steps_ and a.inertia_ == b.inertia_


def test_fit_equals_the_cli_bit_for_bit(tmp_path):
    exe = os.environ.get("KMEANS_CLI") or shutil.which("kmeans")
    if exe is None:
        pytest.skip("the kmeans CLI is not built (KMEANS_CLI unset) and not on PATH")
    x = blobs(n=2500, d=4, k=6, seed=3, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        [exe, "fit", str(tmp_path / "x.npy"), "--k", "6", "--batch-size", "128", "--seed", "17",
         "--max-iter", "20", "--reassignment-ratio", "0.2", "--backend", "cpu",
         "--model-out", str(tmp_path / "cli.kmeans"), "--labels-out", str(tmp_path / "l.npy")],
        check=True, capture_output=True)
    km = kmeans.MiniBatchKMeans(6, batch_size=128, random_state=17, max_iter=20,
                                reassignment_ratio=0.2, backend="cpu", n_init=1).fit(x)
    cli = kmeans.MiniBatchKMeans.load(tmp_path / "cli.kmeans")
    assert cli.cluster_centers_.tobytes() == km.cluster_centers_.tobytes()
    assert cli.inertia_ == km.inertia_ and cli.n_steps_ == km.n_steps_
    assert cli.n_iter_ == km.n_iter_
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), km.labels_)
    # ... and the file Python writes is the CLI's, but for the library version line.
    km.save(tmp_path / "py.kmeans")
    a = json.loads((tmp_path / "cli.kmeans").read_text())
    b = json.loads((tmp_path / "py.kmeans").read_text())
    assert a == b and a["algorithm"] == "minibatch" and a["params"]["batch_size"] == 128


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_partial_fit_over_the_fits_batches_is_the_fit_bit_for_bit(dtype):
    n, k, b, seed = 900, 6, 64, 5
    x = blobs(n=n, d=3, k=k, seed=5, dtype=dtype)
    init = x[:k].copy()
    common = dict(init=init, batch_size=b, tol=0.0, max_no_improvement=None,
                  reassignment_ratio=0.0, random_state=seed, backend="cpu")
    fit = kmeans.MiniBatchKMeans(k, max_iter=2, **common).fit(x)
    g = SplitMix64(seed)  # Init::Array draws nothing before the batches
    stream = kmeans.MiniBatchKMeans(k, **common)
    steps = 2 * n // b
    for _ in range(steps):
        idx = g.indices(n, b)
        stream.partial_fit(x[idx])
        assert stream.labels_.shape == (b,)
    assert fit.n_steps_ == steps and stream.n_steps_ == steps
    assert stream.cluster_centers_.tobytes() == fit.cluster_centers_.tobytes()
    # labels_ and inertia_ after partial_fit are the last batch's, against the new centres
    np.testing.assert_array_equal(stream.labels_, stream.predict(x[idx]))
    assert stream.inertia_ == pytest.approx(-stream.score(x[idx]), rel=1e-6)


def test_partial_fit_initialises_from_the_first_batch_and_is_reproducible(x64):
    runs = []
    for _ in range(2):
        km = kmeans.MiniBatchKMeans(5, random_state=8, backend="cpu")
        for i in range(4):
            km.partial_fit(x64[i * 500:(i + 1) * 500])
        runs.append(km)
    assert runs[0].n_steps_ == 4 and runs[0].n_features_in_ == 4
    assert runs[0].cluster_centers_.tobytes() == runs[1].cluster_centers_.tobytes()
    # the blobs are found: the batch inertia is near that of their unit spread (4 features)
    assert runs[0].inertia_ < 500 * 4 * 1.5
    with pytest.raises(ValueError, match="X has 3 features, but MiniBatchKMeans is expecting 4"):
        runs[0].partial_fit(x64[:100, :3])


def test_partial_fit_after_fit_continues_from_it(x64):
    km = kmeans.MiniBatchKMeans(5, batch_size=100, random_state=1, backend="cpu").fit(x64)
    before = km.cluster_centers_.copy()
    km.partial_fit(x64[:300])
    assert km.n_steps_ == 1 and km.labels_.shape == (300,)
    # one step from well-placed centres with large counts moves them a little only
    assert 0 < np.abs(km.cluster_centers_ - before).max() < 0.5
    # a float32 batch on a float64 model is converted to the model's dtype
    km.partial_fit(x64[300:600].astype(np.float32))
    assert km.cluster_centers_.dtype == np.float64 and km.n_steps_ == 2


def _stream(km, x, calls):
    for i in calls:
        km.partial_fit(x[i * 150:(i + 1) * 150])
    return km


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pickle_mid_stream_continues_exactly(dtype):
    x = blobs(n=2000, d=4, k=5, seed=9, dtype=dtype)
    km = _stream(kmeans.MiniBatchKMeans(5, random_state=3, reassignment_ratio=0.5,
                                        backend="cpu"), x, range(3))
    back = pickle.loads(pickle.dumps(km))
    assert back.cluster_centers_.tobytes() == km.cluster_centers_.tobytes()
    assert back.n_steps_ == 3
    _stream(km, x, range(3, 12))
    _stream(back, x, range(3, 12))
    assert back.cluster_centers_.tobytes() == km.cluster_centers_.tobytes()
    assert back.n_steps_ == km.n_steps_ == 12
    np.testing.assert_array_equal(back.labels_, km.labels_)


def test_save_load_mid_stream_continues_exactly(tmp_path, x32):
    km = _stream(kmeans.MiniBatchKMeans(4, random_state=6, reassignment_ratio=0.5,
                                        backend="cpu"), x32, range(2))
    km.save(tmp_path / "m.kmeans")
    doc = json.loads((tmp_path / "m.kmeans").read_text())
    assert doc["algorithm"] == "minibatch" and doc["partial_fit"]["steps"] == 2
    assert len(doc["partial_fit"]["counts"]) == 4
    back = kmeans.MiniBatchKMeans.load(tmp_path / "m.kmeans")
    assert back.get_params()["reassignment_ratio"] == 0.5 and back.random_state == 6
    assert back.n_steps_ == 2 and not hasattr(back, "labels_")
    assert back.cluster_centers_.tobytes() == km.cluster_centers_.tobytes()
    _stream(km, x32, range(2, 10))
    _stream(back, x32, range(2, 10))
    assert back.cluster_centers_.tobytes() == km.cluster_centers_.tobytes()
    # a loaded model pickles, and still saves the same file
    pickle.loads(pickle.dumps(back)).save(tmp_path / "again.kmeans")
    km.save(tmp_path / "now.kmeans")
    assert (tmp_path / "again.kmeans").read_bytes() == (tmp_path / "now.kmeans").read_bytes()


def test_fit_save_load_round_trip(tmp_path, x64):
    km = kmeans.MiniBatchKMeans(5, batch_size=150, max_no_improvement=None, random_state=2,
                                backend="cpu").fit(x64)
    km.save(tmp_path / "m.kmeans")
    back = kmeans.MiniBatchKMeans.load(tmp_path / "m.kmeans")
    assert back.max_no_improvement is None and back.batch_size == 150
    assert back.inertia_ == km.inertia_ and back.n_iter_ == km.n_iter_
    assert back.n_steps_ == km.n_steps_
    np.testing.assert_array_equal(back.sse_history_, km.sse_history_)
    np.testing.assert_array_equal(back.predict(x64), km.labels_)
    # the two estimators refuse each other's files, naming the right one
    with pytest.raises(ValueError, match="mini-batch model .*MiniBatchKMeans.load"):
        kmeans.KMeans.load(tmp_path / "m.kmeans")
    kmeans.KMeans(3, random_state=0).fit(x64).save(tmp_path / "lloyd.kmeans")
    with pytest.raises(ValueError, match="Lloyd model .*KMeans.load"):
        kmeans.MiniBatchKMeans.load(tmp_path / "lloyd.kmeans")


def test_pickled_fit_is_the_same_estimator(x64):
    km = kmeans.MiniBatchKMeans(4, batch_size=100, random_state=0).fit(x64)
    back = pickle.loads(pickle.dumps(km))
    assert back.get_params() == km.get_params()
    np.testing.assert_array_equal(back.predict(x64), km.labels_)
    assert back.n_steps_ == km.n_steps_


def test_callback_sees_every_step_and_can_stop(x64):
    seen = []
    km = kmeans.MiniBatchKMeans(4, batch_size=100, random_state=0,
                                callback=lambda info: seen.append(info)).fit(x64)
    assert [i.iteration for i in seen] == list(range(km.n_steps_))
    np.testing.assert_array_equal([i.sse for i in seen], km.sse_history_)
    stopped = kmeans.MiniBatchKMeans(4, batch_size=100, random_state=0,
                                     callback=lambda info: info.iteration < 2).fit(x64)
    assert stopped.n_steps_ == 3 and stopped.labels_.shape == (2000,)


def test_sample_weight(x64):
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(x64))
    km = kmeans.MiniBatchKMeans(5, batch_size=200, random_state=1).fit(x64, sample_weight=w)
    assert km.cluster_sizes_.sum() == pytest.approx(w.sum())
    km.partial_fit(x64[:100], sample_weight=w[:100])
    with pytest.raises(ValueError, match="sample_weight has shape"):
        km.partial_fit(x64[:100], sample_weight=w[:99])


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(batch_size=0), ValueError, r"batch_size = 0 is out of range \[1, "),
        (dict(batch_size=-3), ValueError, r"batch_size = -3 is out of range"),
        (dict(batch_size=2.5), TypeError, "batch_size must be an int"),
        (dict(max_no_improvement=0), ValueError, r"max_no_improvement = 0 is out of range \[1"),
        (dict(max_no_improvement=-1), ValueError, "max_no_improvement = -1 is out of range"),
        (dict(reassignment_ratio=-0.1), ValueError, r"reassignment_ratio = -0.1 must be finite"),
        (dict(reassignment_ratio=float("nan")), ValueError, "reassignment_ratio = nan must be"),
        (dict(reassignment_ratio=float("inf")), ValueError, "reassignment_ratio = inf must be"),
        (dict(reassignment_ratio="x"), TypeError, "reassignment_ratio must be a float"),
        (dict(tol=-1.0), ValueError, r"tol = -1.0 must be >= 0"),
        (dict(n_clusters=0), ValueError, r"n_clusters = 0 is out of range"),
        (dict(n_init=0), ValueError, r"n_init = 0 is out of range"),
        (dict(init="kmeans"), ValueError, "init = 'kmeans' is not one of"),
        (dict(backend="gpu"), ValueError, "backend = 'gpu' is not one of"),
        (dict(n_clusters=3000), ValueError, "k = 3000"),
    ],
)
def test_bad_params_name_the_value(x64, params, error, match):
    with pytest.raises(error, match=match):
        kmeans.MiniBatchKMeans(**params).fit(x64)
    if "n_clusters" not in params:
        with pytest.raises(error, match=match):
            kmeans.MiniBatchKMeans(**params).partial_fit(x64[:500])
    assert not hasattr(kmeans.MiniBatchKMeans(**params), "cluster_centers_")


def test_bad_input_is_refused_before_anything_changes(x64):
    km = kmeans.MiniBatchKMeans(3, random_state=0).fit(x64)
    centres = km.cluster_centers_.copy()
    bad = x64[:200].copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        km.partial_fit(bad)
    with pytest.raises(ValueError, match="k = 3"):  # fewer rows than clusters
        km.partial_fit(x64[:2])
    np.testing.assert_array_equal(km.cluster_centers_, centres)
    with pytest.raises(AttributeError, match="not fitted"):
        kmeans.MiniBatchKMeans(2).predict(x64)


def test_inertia_is_close_to_scikit_learns_on_blobs():
    cluster = pytest.importorskip("sklearn.cluster")
    x = blobs(n=20000, d=8, k=20, seed=11, spread=1.0)
    init = kmeans.KMeans(20, max_iter=0, random_state=0).fit(x).cluster_centers_
    ours = kmeans.MiniBatchKMeans(20, init=init, batch_size=1024, random_state=0).fit(x)
    theirs = cluster.MiniBatchKMeans(20, init=init, n_init=1, batch_size=1024,
                                     random_state=0).fit(x)
    # Different random batches, same rules and start: the same minimum to within 2%.
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=0.02)
    # Both stop early (max_no_improvement) long before max_iter epochs.
    assert max(ours.n_steps_, theirs.n_steps_) < 100 * 20000 // 1024 // 10
    lloyd = kmeans.KMeans(20, init=init).fit(x)
    assert lloyd.inertia_ <= ours.inertia_ * 1.0001  # mini-batch trades inertia for time


def test_cosine_mini_batch_stays_on_the_sphere_and_round_trips(tmp_path):
    rng = np.random.default_rng(4)
    dirs = rng.normal(size=(3, 24))
    x = (dirs[rng.integers(0, 3, 3000)] + 0.1 * rng.normal(size=(3000, 24))) * rng.uniform(
        0.5, 4.0, size=(3000, 1))
    mb = kmeans.MiniBatchKMeans(3, batch_size=256, random_state=2, metric="cosine",
                                backend="cpu").fit(x)
    np.testing.assert_allclose(np.linalg.norm(mb.cluster_centers_, axis=1), 1.0, rtol=1e-12)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = unit @ mb.cluster_centers_.T
    np.testing.assert_array_equal(mb.predict(x), np.argmax(cos, axis=1))
    np.testing.assert_allclose(mb.transform(x), 1.0 - cos, atol=1e-12)
    mb.save(tmp_path / "m.kmeans")
    back = kmeans.MiniBatchKMeans.load(tmp_path / "m.kmeans")
    assert back.metric == "cosine"
    np.testing.assert_array_equal(back.predict(x), mb.predict(x))
