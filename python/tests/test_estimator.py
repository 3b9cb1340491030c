# SPDX-License-Identifier: Apache-2.0
# kmeans.KMeans's parameters, methods, fitted attributes, callback, verbose output, errors and
# pickling.
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import kmeans
from conftest import blobs, classic_study


def test_defaults_are_scikit_learns_names_and_values():
    p = kmeans.KMeans().get_params()
    assert p == dict(
        n_clusters=8,
        init="k-means++",
        n_init=1,
        max_iter=300,
        tol=1e-4,
        random_state=None,
        algorithm="lloyd",
        metric="euclidean",
        backend="auto",
        n_threads=None,
        verbose=False,
        callback=None,
        output="numpy",
    )


def test_set_params_changes_what_get_params_reports():
    km = kmeans.KMeans().set_params(n_clusters=3, max_iter=7)
    assert km.get_params()["n_clusters"] == 3 and km.max_iter == 7
    with pytest.raises(ValueError, match="Invalid parameter"):
        km.set_params(not_a_param=1)


def test_fitted_attributes(x64):
    km = kmeans.KMeans(5, random_state=1).fit(x64)
    assert km.cluster_centers_.shape == (5, 4) and km.cluster_centers_.dtype == np.float64
    assert km.labels_.shape == (2000,) and km.labels_.dtype == np.int32
    assert set(np.unique(km.labels_)) <= set(range(5))
    assert km.n_features_in_ == 4
    assert 1 <= km.n_iter_ <= 300 and km.sse_history_.shape == (km.n_iter_,)
    assert km.backend_ == ("cuda" if kmeans.cuda_available()[0] else "cpu")
    assert set(km.timings_) == {"init", "assign", "update", "final_assign"}
    assert all(v >= 0 for v in km.timings_.values())
    # inertia_ is the SSE of the labels against the centroids
    sse = ((x64 - km.cluster_centers_[km.labels_]) ** 2).sum()
    assert km.inertia_ == pytest.approx(sse, rel=1e-12)
    assert km.cluster_sizes_.sum() == 2000
    assert km.converged_


def test_methods_agree(x64):
    km = kmeans.KMeans(5, random_state=3)
    labels = km.fit_predict(x64)
    np.testing.assert_array_equal(labels, km.labels_)
    np.testing.assert_array_equal(km.predict(x64), km.labels_)
    dist = km.transform(x64)
    assert dist.shape == (2000, 5)
    np.testing.assert_array_equal(dist.argmin(axis=1), km.labels_)
    direct = np.sqrt(((x64[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, direct, rtol=1e-12)
    assert km.score(x64) == pytest.approx(-km.inertia_, rel=1e-12)
    w = np.linspace(0.5, 2.0, 2000)
    assert km.score(x64, sample_weight=w) == pytest.approx(-(w * dist.min(1) ** 2).sum(), rel=1e-10)
    np.testing.assert_allclose(kmeans.KMeans(5, random_state=3).fit_transform(x64), dist)


def test_feature_names_out_as_scikit_learn(x64):
    pytest.importorskip("sklearn")
    km = kmeans.KMeans(3, random_state=0).fit(x64)
    assert list(km.get_feature_names_out()) == ["kmeans0", "kmeans1", "kmeans2"]


def test_random_state_int_is_reproducible_and_changes_the_init(x64):
    a = kmeans.KMeans(5, init="random", random_state=7, max_iter=0).fit(x64)
    b = kmeans.KMeans(5, init="random", random_state=7, max_iter=0).fit(x64)
    c = kmeans.KMeans(5, init="random", random_state=8, max_iter=0).fit(x64)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)
    # a generator: drawn from it, so two draws differ; the same generator state repeats
    r1 = kmeans.KMeans(5, init="random", random_state=np.random.RandomState(0), max_iter=0)
    r2 = kmeans.KMeans(5, init="random", random_state=np.random.RandomState(0), max_iter=0)
    np.testing.assert_array_equal(r1.fit(x64).cluster_centers_, r2.fit(x64).cluster_centers_)
    g = kmeans.KMeans(5, init="random", random_state=np.random.default_rng(0), max_iter=0)
    assert g.fit(x64).cluster_centers_.shape == (5, 4)


@pytest.mark.parametrize("init", ["k-means++", "random", "k-means||"])
def test_every_init_method_gives_a_good_clustering(init):
    x = blobs(n=3000, d=3, k=4, spread=0.2, seed=5)
    km = kmeans.KMeans(4, init=init, n_init=10, random_state=0).fit(x)
    assert len(np.unique(km.labels_)) == 4
    assert km.inertia_ / len(x) < 0.2 * 3 * 1.5  # near the blobs' own variance


def test_init_array_and_callable(x64):
    c0 = x64[[0, 10, 20, 30, 40]]
    a = kmeans.KMeans(5, init=c0, max_iter=0).fit(x64)
    np.testing.assert_array_equal(a.cluster_centers_, c0)
    calls = []

    def init(X, k, random_state):
        calls.append((X.shape, k, random_state))
        return X[:k]

    b = kmeans.KMeans(5, init=init, max_iter=0, random_state=4).fit(x64)
    assert calls == [((2000, 4), 5, 4)]
    np.testing.assert_array_equal(b.cluster_centers_, x64[:5])
    with pytest.raises(ValueError, match=r"init has shape \(4, 4\); expected .* \(5, 4\)"):
        kmeans.KMeans(5, init=x64[:4]).fit(x64)


def test_n_init_with_an_init_array_runs_once_and_warns(x64):
    with pytest.warns(UserWarning, match="n_init = 3 ignored"):
        km = kmeans.KMeans(5, init=x64[:5], n_init=3).fit(x64)
    ref = kmeans.KMeans(5, init=x64[:5]).fit(x64)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)


def test_n_init_keeps_the_best_run(x64):
    one = [
        kmeans.KMeans(5, init="random", random_state=s, n_init=1).fit(x64).inertia_
        for s in range(5)
    ]
    best = kmeans.KMeans(5, init="random", random_state=0, n_init=5).fit(x64).inertia_
    assert best == pytest.approx(min(one), rel=1e-12)
    assert kmeans.KMeans(5, init="random", n_init="auto", random_state=0).fit(
        x64
    ).inertia_ == pytest.approx(
        kmeans.KMeans(5, init="random", n_init=10, random_state=0).fit(x64).inertia_
    )


def test_max_iter_and_tol(x64):
    assert kmeans.KMeans(5, random_state=0, max_iter=2, tol=0).fit(x64).n_iter_ == 2
    assert kmeans.KMeans(5, random_state=0, max_iter=0).fit(x64).n_iter_ == 0
    loose = kmeans.KMeans(5, init=x64[:5], tol=1e-1).fit(x64).n_iter_
    tight = kmeans.KMeans(5, init=x64[:5], tol=0).fit(x64).n_iter_
    assert loose < tight


@pytest.mark.parametrize("backend", ["cpu", "reference", "auto"])
def test_backend(backend, x64):
    km = kmeans.KMeans(5, init=x64[:5], backend=backend).fit(x64)
    assert km.backend_ == (
        "cpu"
        if backend == "auto" and not kmeans.cuda_available()[0]
        else backend if backend != "auto" else "cuda"
    )


def test_cuda_backend_without_a_gpu_is_a_value_error(x64):
    if kmeans.cuda_available()[0]:
        pytest.skip("a usable GPU is present")
    with pytest.raises(ValueError, match="CUDA|cuda|NVIDIA"):
        kmeans.KMeans(5, backend="cuda").fit(x64)


def test_n_threads_gives_the_same_bits(x64):
    a = kmeans.KMeans(5, random_state=2, n_threads=1).fit(x64)
    b = kmeans.KMeans(5, random_state=2, n_threads=2).fit(x64)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    with pytest.raises(ValueError, match="n_threads = 2000 exceeds"):
        kmeans.KMeans(5, n_threads=2000).fit(x64)


def test_verbose_prints_one_line_per_iteration(x64, capsys):
    km = kmeans.KMeans(5, init=x64[:5], tol=0, verbose=True).fit(x64)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == km.n_iter_
    assert lines[0].startswith("Iteration 0, inertia ")
    assert float(lines[0].split()[3].rstrip(",")) == pytest.approx(km.sse_history_[0], rel=1e-9)


def test_callback_sees_every_iteration_and_can_stop(x64):
    seen = []
    km = kmeans.KMeans(5, init=x64[:5], tol=0, callback=seen.append).fit(x64)
    assert [i.iteration for i in seen] == list(range(km.n_iter_))
    np.testing.assert_allclose([i.sse for i in seen], km.sse_history_)
    assert all(i.seconds >= 0 and i.center_shift >= 0 for i in seen)
    stopped = kmeans.KMeans(5, init=x64[:5], tol=0, callback=lambda i: i.iteration < 2).fit(x64)
    assert stopped.n_iter_ == 3 and km.n_iter_ > 3
    # labels still belong to the returned centroids
    np.testing.assert_array_equal(stopped.predict(x64), stopped.labels_)


def test_an_exception_in_the_callback_stops_the_fit_and_propagates(x64):
    def boom(info):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        kmeans.KMeans(5, callback=boom).fit(x64)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(n_clusters=0), ValueError, r"n_clusters = 0 is out of range"),
        (dict(n_clusters=2.5), TypeError, r"n_clusters must be an int, got 2.5"),
        (dict(n_clusters=5000), ValueError, r"k = 5000 exceeds the number of samples n = 2000"),
        (dict(max_iter=-1), ValueError, r"max_iter = -1 is out of range"),
        (dict(tol=-1.0), ValueError, r"tol"),
        (dict(tol="x"), TypeError, r"tol must be a float, got 'x'"),
        (dict(n_init=0), ValueError, r"n_init = 0 is out of range"),
        (dict(init="kmeans"), ValueError, r"init = 'kmeans' is not one of"),
        (dict(algorithm="hamerly"), ValueError, r"algorithm = 'hamerly' is not one of"),
        (dict(backend="gpu"), ValueError, r"backend = 'gpu' is not one of"),
        (dict(output="cupy"), ValueError, r"output = 'cupy' is not one of"),
        (dict(n_threads=0), ValueError, r"n_threads = 0 is out of range"),
        (dict(random_state=-1), ValueError, r"random_state = -1 is out of range"),
        (dict(random_state="a"), TypeError, r"random_state must be None, an int"),
        (dict(callback=3), TypeError, r"callback must be callable"),
    ],
)
def test_bad_parameters_name_the_value(params, error, match, x64):
    with pytest.raises(error, match=match):
        kmeans.KMeans(**{"n_clusters": 5, **params}).fit(x64)


@pytest.mark.parametrize("algorithm", ["elkan", "auto"])
def test_elkan_and_auto_give_lloyds_fit(algorithm, tmp_path):
    x = blobs(3000, 12, 40, seed=4).astype(np.float64)
    ref = kmeans.KMeans(70, init="random", random_state=1, backend="cpu", tol=0).fit(x)
    km = kmeans.KMeans(70, init="random", random_state=1, backend="cpu", tol=0,
                       algorithm=algorithm).fit(x)
    assert np.array_equal(km.labels_, ref.labels_)
    assert np.array_equal(km.cluster_centers_, ref.cluster_centers_)
    assert km.inertia_ == ref.inertia_ and km.n_iter_ == ref.n_iter_
    km.save(tmp_path / "m.kmeans")
    assert kmeans.KMeans.load(tmp_path / "m.kmeans").algorithm == algorithm


def test_predict_before_fit_and_feature_mismatch(x64):
    with pytest.raises(Exception, match="not fitted"):
        kmeans.KMeans(3).predict(x64)
    km = kmeans.KMeans(3, random_state=0).fit(x64)
    with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 4"):
        km.predict(x64[:, :3])


def test_pickled_fitted_estimator_predicts_the_same(x64):
    km = kmeans.KMeans(5, random_state=0).fit(x64)
    back = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(back.cluster_centers_, km.cluster_centers_)
    np.testing.assert_array_equal(back.predict(x64), km.labels_)
    assert back.inertia_ == km.inertia_ and back.get_params() == km.get_params()
    assert back.backend_ == km.backend_ and back.timings_ == km.timings_


def test_library_warnings_become_python_warnings():
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 10, axis=0)
    with pytest.warns(UserWarning, match="distinct"):
        km = kmeans.KMeans(3, random_state=0).fit(x)
    assert km.warnings_


def test_works_without_scikit_learn(tmp_path):
    """With sklearn unimportable, KMeans has its own get_params/set_params and validation."""
    code = textwrap.dedent("""
        import sys
        sys.modules["sklearn"] = None   # import sklearn now raises ImportError
        import numpy as np, kmeans
        for cls in (kmeans.KMeans, kmeans.MiniBatchKMeans):
            assert [c.__module__ for c in cls.__mro__][2:4] == ["kmeans._fallback", "builtins"]
        mb = kmeans.MiniBatchKMeans(3, batch_size=50, random_state=0).set_params(max_iter=5)
        assert "max_iter=5" in repr(mb)
        mb.fit(np.random.default_rng(1).normal(size=(200, 2))).partial_fit(np.ones((10, 2)))
        assert mb.n_steps_ == 1 and mb.cluster_centers_.shape == (3, 2)
        km = kmeans.KMeans(3, random_state=0).set_params(max_iter=50)
        assert km.get_params()["max_iter"] == 50 and "max_iter=50" in repr(km)
        x = np.random.default_rng(0).normal(size=(300, 2))
        km.fit(x.tolist())
        assert km.cluster_centers_.shape == (3, 2) and km.n_features_in_ == 2
        for bad, msg in [(x[:, 0], "Expected 2D array"), (x[:0], "0 sample"),
                         (x.astype(complex), "complex")]:
            try:
                kmeans.KMeans(3).fit(bad)
            except ValueError as e:
                assert msg in str(e), e
            else:
                raise AssertionError(msg)
        try:
            km.predict(x[:, :1])
        except ValueError as e:
            assert "X has 1 features, but KMeans is expecting 2" in str(e)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_classic_study_converges_to_the_four_blobs():
    x = classic_study()
    km = kmeans.KMeans(4, init=x[[17, 1017, 2017, 3017]], max_iter=50, tol=0).fit(x)
    assert km.cluster_sizes_.min() > 800  # one cluster per blob of 1000
    assert km.inertia_ / len(x) < 100


def test_the_module_has_the_cuda_backend_when_the_build_has_it():
    expect = os.environ.get("KMEANS_PY_EXPECT_CUDA_BUILD")
    if expect is None:
        pytest.skip("KMEANS_PY_EXPECT_CUDA_BUILD is set by ctest only")
    assert kmeans.built_with_cuda() == (expect.upper() in ("ON", "TRUE", "1"))
    assert kmeans.cuda_available()[0] or kmeans.cuda_available()[1]  # a reason when not


def test_ctrl_c_stops_a_long_fit():
    """SIGINT during a fit (the GIL released, no Python callback) raises KeyboardInterrupt at
    the next iteration instead of waiting for the fit to end."""
    code = textwrap.dedent("""
        import sys, time, numpy as np, kmeans
        x = np.random.default_rng(0).uniform(size=(1_000_000, 2))
        print("start", flush=True)
        t0 = time.perf_counter()
        try:  # about 50 ms an iteration on 2 cores: the whole fit would take over 15 s
            kmeans.KMeans(256, init=x[:256], max_iter=1000, tol=0).fit(x)
            print("finished", time.perf_counter() - t0)
        except KeyboardInterrupt:
            print("interrupted", time.perf_counter() - t0)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "start"
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    word, seconds = out.split()
    assert word == "interrupted", out
    assert float(seconds) < 5, out


def test_the_module_needs_no_cuda_library_at_load_time():
    """Like libkmeans: the CUDA runtime is linked in statically and cuBLAS is opened on use, so
    kmeans._core imports on machines without CUDA."""
    from kmeans import _core

    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed")
    out = subprocess.run(["readelf", "-d", _core.__file__], capture_output=True, text=True)
    needed = [line.split()[-1] for line in out.stdout.splitlines() if "(NEEDED)" in line]
    assert needed, out.stdout
    assert not [n for n in needed if any(c in n for c in ("cuda", "cublas", "nvidia", "nvrtc"))]
    assert not [n for n in needed if "kmeans" in n]  # the library is inside the module


@pytest.mark.parametrize(
    "hide, expect_code, expect_text",
    [
        ("numpy", 77, "has no NumPy"),
        ("pytest", 77, "has no pytest"),
        (None, 1, "no test collected"),
    ],
)
def test_the_ctest_runner_skips_with_a_reason_or_fails_on_no_tests(
    hide, expect_code, expect_text, tmp_path
):
    runner = os.path.join(os.path.dirname(__file__), "run_pytest.py")
    empty = tmp_path / "test_empty.py"
    empty.write_text("# no tests\n")
    code = (
        "import sys, runpy\n%ssys.argv = ['run_pytest.py', %r]\nrunpy.run_path(%r, run_name='__main__')"
        % (
            "sys.modules[%r] = None\n" % hide if hide else "",
            str(empty),
            runner,
        )
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == expect_code, (out.stdout, out.stderr)
    assert expect_text in out.stdout
