# SPDX-License-Identifier: Apache-2.0
# KMeans.save / KMeans.load: the library's model file from Python, read by json too, and pickling.
import json
import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest

import kmeans
from conftest import blobs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_bit_for_bit(tmp_path, dtype):
    x = blobs(dtype=dtype)
    km = kmeans.KMeans(5, random_state=3, tol=0, backend="cpu").fit(x)
    path = tmp_path / "m.kmeans"
    km.save(path)
    back = kmeans.KMeans.load(path)
    assert back.cluster_centers_.dtype == dtype
    assert back.cluster_centers_.tobytes() == km.cluster_centers_.tobytes()
    assert back.inertia_ == km.inertia_ and back.n_iter_ == km.n_iter_
    assert back.backend_ == km.backend_ and back.converged_ == km.converged_
    np.testing.assert_array_equal(back.sse_history_, km.sse_history_)
    np.testing.assert_array_equal(back.cluster_sizes_, km.cluster_sizes_)
    assert back.n_features_in_ == x.shape[1]
    assert not hasattr(back, "labels_")  # the training labels are not stored
    assert back.get_params()["random_state"] == 3 and back.get_params()["tol"] == 0
    assert back.get_params()["backend"] == "cpu" and back.n_clusters == 5
    np.testing.assert_array_equal(back.predict(x), km.labels_)
    assert back.transform(x).tobytes() == km.transform(x).tobytes()
    assert back.score(x) == km.score(x)
    # The file is plain JSON: its centroids read back bit for bit with json + NumPy.
    doc = json.loads(path.read_text())
    assert doc["format"] == "kmeans-model" and doc["dtype"] == np.dtype(dtype).name
    assert doc["k"] == 5 and doc["d"] == x.shape[1] and doc["metric"] == "euclidean"
    assert np.array(doc["centroids"], dtype=dtype).tobytes() == km.cluster_centers_.tobytes()


def test_loaded_model_pickles(tmp_path, x64):
    km = kmeans.KMeans(4, random_state=0).fit(x64)
    km.save(tmp_path / "m.kmeans")
    back = pickle.loads(pickle.dumps(kmeans.KMeans.load(tmp_path / "m.kmeans")))
    np.testing.assert_array_equal(back.predict(x64), km.labels_)
    # ... and a pickled fitted estimator still saves the same file.
    pickle.loads(pickle.dumps(km)).save(tmp_path / "again.kmeans")
    assert (tmp_path / "again.kmeans").read_bytes() == (tmp_path / "m.kmeans").read_bytes()


def test_random_state_none_records_the_seed_that_ran(tmp_path, x64):
    km = kmeans.KMeans(3, random_state=None).fit(x64)
    km.save(tmp_path / "m.kmeans")
    back = kmeans.KMeans.load(tmp_path / "m.kmeans")
    refit = kmeans.KMeans(3, random_state=back.random_state).fit(x64)
    np.testing.assert_array_equal(refit.cluster_centers_, km.cluster_centers_)


def test_init_array_comes_back_as_the_fitted_centroids(tmp_path, x64):
    init = x64[:3].copy()
    km = kmeans.KMeans(3, init=init).fit(x64)
    km.save(tmp_path / "m.kmeans")
    back = kmeans.KMeans.load(tmp_path / "m.kmeans")
    np.testing.assert_array_equal(back.init, km.cluster_centers_)


def test_bad_files_are_value_errors(tmp_path, x64):
    path = tmp_path / "m.kmeans"
    kmeans.KMeans(2, random_state=0).fit(x64).save(path)
    text = path.read_text()
    (tmp_path / "short.kmeans").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="truncated"):
        kmeans.KMeans.load(tmp_path / "short.kmeans")
    (tmp_path / "newer.kmeans").write_text(text.replace('"format_version": 1', '"format_version": 9'))
    with pytest.raises(ValueError, match="written by a newer kmeans"):
        kmeans.KMeans.load(tmp_path / "newer.kmeans")
    np.save(tmp_path / "c.npy", x64[:2])
    with pytest.raises(ValueError, match="is not a kmeans model file"):
        kmeans.KMeans.load(tmp_path / "c.npy")
    with pytest.raises(ValueError, match="cannot open model file"):
        kmeans.KMeans.load(tmp_path / "none.kmeans")
    with pytest.raises(AttributeError, match="not fitted"):  # sklearn's NotFittedError is one
        kmeans.KMeans(2).save(tmp_path / "unfitted.kmeans")
    assert not (tmp_path / "unfitted.kmeans").exists()


def test_centroids_set_by_hand_are_checked(tmp_path, x64):
    km = kmeans.KMeans(2, random_state=0).fit(x64)
    km.cluster_centers_ = km.cluster_centers_.copy()
    km.cluster_centers_[0, 0] = np.nan
    with pytest.raises(ValueError, match="centroids contains NaN at row 0, column 0"):
        km.save(tmp_path / "m.kmeans")
    assert not (tmp_path / "m.kmeans").exists()


def test_the_cli_reads_a_python_model(tmp_path, x64):
    exe = os.environ.get("KMEANS_CLI") or shutil.which("kmeans")
    if exe is None:
        pytest.skip("the kmeans CLI is not built (KMEANS_CLI unset) and not on PATH")
    km = kmeans.KMeans(3, random_state=0).fit(x64)
    km.save(tmp_path / "m.kmeans")
    np.save(tmp_path / "x.npy", x64)
    subprocess.run([exe, "predict", str(tmp_path / "x.npy"), "--model", str(tmp_path / "m.kmeans"),
                    "--labels-out", str(tmp_path / "l.npy")], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), km.labels_)
