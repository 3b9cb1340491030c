# SPDX-License-Identifier: Apache-2.0
# The data path: dtypes and layouts (float32 stays float32, others converted once), C-contiguous
# arrays used in place (the no-copy check), the GIL released during fit, bad input, and the
# device-array protocols (__cuda_array_interface__, __dlpack__) parsed and read by address.
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import kmeans
from kmeans import _core
from conftest import blobs


def _fit(x, **kw):
    """A fit from the first 5 points, on the CPU backend (also where a GPU is usable: these
    tests are about the host data path)."""
    return kmeans.KMeans(5, init=np.asarray(x)[:5], **{"backend": "cpu", **kw}).fit(x)


def test_float32_stays_float32(x32):
    km = _fit(x32)
    assert km.cluster_centers_.dtype == np.float32
    assert km.transform(x32).dtype == np.float32
    assert km.predict(x32).dtype == np.int32
    # a float32 model predicts float64 data (and the reverse) without complaint
    np.testing.assert_array_equal(km.predict(x32.astype(np.float64)), km.labels_)


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: np.asfortranarray(x),  # F order
        lambda x: np.repeat(x, 2, axis=0)[::2],  # strided rows
        lambda x: x.tolist(),  # nested lists
    ],
)
def test_other_layouts_are_converted_once_with_the_same_result(x64, convert):
    ref = _fit(x64)
    km = _fit(convert(x64))
    assert km.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.uint8])
def test_other_dtypes_become_float64(dtype):
    x = (blobs(n=500, d=3, k=3, seed=1) * 5).astype(dtype)
    km = kmeans.KMeans(3, init=x[:3], max_iter=5).fit(x)
    assert km.cluster_centers_.dtype == np.float64
    ref = kmeans.KMeans(3, init=x[:3].astype(np.float64), max_iter=5).fit(x.astype(np.float64))
    np.testing.assert_array_equal(km.labels_, ref.labels_)


def test_read_only_arrays_are_fine(x64):
    x = x64.copy()
    x.setflags(write=False)
    np.testing.assert_array_equal(_fit(x).labels_, _fit(x64).labels_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_c_contiguous_arrays_are_not_copied(dtype):
    """No NumPy allocation near the data's size during fit, predict, transform or score."""
    x = blobs(n=400_000, d=8, k=4, seed=2, dtype=dtype)  # 12.8 / 25.6 MB
    km = kmeans.KMeans(4, init=x[:4], max_iter=3, backend="cpu")
    tracemalloc.start()
    try:
        km.fit(x)
        km.predict(x)
        km.score(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # labels (n int32) are made by the library and handed over without a copy
    assert peak < 0.05 * x.nbytes, (peak, x.nbytes)


def test_a_1_gb_array_is_used_in_place():
    """The issue's check: the fit's peak memory grows by far less than the 1 GiB array."""
    code = textwrap.dedent("""
        import resource, numpy as np, kmeans
        n, d = 1 << 24, 16                     # 2^28 float32 values: 1 GiB
        x = np.empty((n, d), dtype=np.float32)
        x[:] = (np.arange(n, dtype=np.float32) % 1000)[:, None]
        x[:, 1] *= 0.5
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        km = kmeans.KMeans(4, init=x[[0, 250, 500, 750]], max_iter=2, tol=0,
                           backend="cpu").fit(x)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(x.nbytes, after - before, km.n_iter_)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    nbytes, growth, n_iter = map(int, out.stdout.split())
    print("1 GiB array: peak RSS grew by %.1f MiB during fit" % (growth / 2**20))
    assert nbytes == 1 << 30 and n_iter == 2
    # the labels alone are n int32 = 64 MiB; a copy of the data would be 1024 MiB
    assert growth < 0.25 * nbytes, growth


def test_the_gil_is_released_during_fit():
    x = blobs(n=300_000, d=16, k=8, seed=3, dtype=np.float32)
    km = kmeans.KMeans(8, init=x[:8], max_iter=30, tol=0, n_threads=1)
    t = threading.Thread(target=km.fit, args=(x,))
    stamps = []
    start = time.perf_counter()
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    duration = time.perf_counter() - start
    t.join()
    assert km.n_iter_ == 30 and duration > 0.05
    gaps = np.diff([start] + stamps)
    # with the GIL held for the whole fit this thread would stall for all of it
    assert gaps.max() < 0.5 * duration, (gaps.max(), duration)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (
            lambda x: np.where(np.arange(x.size).reshape(x.shape) == 13, np.nan, x),
            ValueError,
            r"^data contains NaN at row 3, column 1 \(input must not contain NaN or infinity\)$",
        ),
        (
            lambda x: np.where(np.arange(x.size).reshape(x.shape) == 9, np.inf, x),
            ValueError,
            r"data contains Inf at row 2, column 1",
        ),
        (
            lambda x: np.where(np.arange(x.size).reshape(x.shape) == 0, 1e300, x),
            ValueError,
            r"data value 1e\+300 at row 0, column 0 is outside the supported range",
        ),
        (lambda x: x[:, 0], ValueError, r"Expected 2D array, got 1D array"),
        (lambda x: x[:0], ValueError, r"0 sample"),
        (lambda x: x.astype(np.complex128), ValueError, r"[Cc]omplex"),
        (lambda x: np.array([["a", "b"]] * 10), ValueError, r"float|convert"),
    ],
)
def test_bad_data_is_a_clear_error(bad, error, match):
    x = blobs(n=100, d=4, k=3)
    with pytest.raises(error, match=match):
        kmeans.KMeans(3, random_state=0).fit(bad(x))


def test_sparse_input_is_a_type_error():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="[Ss]parse"):
        kmeans.KMeans(3).fit(sparse.random(50, 4, density=0.5, format="csr"))


def test_sample_weight(x64):
    w = np.random.default_rng(0).integers(1, 4, size=len(x64))
    weighted = _fit(x64, tol=0).fit(x64, sample_weight=w)
    repeated = kmeans.KMeans(5, init=x64[:5], tol=0, backend="cpu")
    repeated.fit(np.repeat(x64, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-12)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-12)
    # scalars and lists are accepted; float32 data takes float32 weights
    assert _fit(x64).fit(x64, sample_weight=2.0).inertia_ == pytest.approx(2 * _fit(x64).inertia_)
    _fit(x64.astype(np.float32)).fit(x64.astype(np.float32), sample_weight=list(w))
    for bad, match in [
        (-w, r"sample_weight\[0\] = -\d+ is negative"),
        (w[:10], r"sample_weight has shape \(10,\); expected \(2000,\)"),
        (np.zeros(len(x64)), r"sample_weight sums to 0: .* \(every sample weight is zero\)$"),
    ]:
        with pytest.raises(ValueError, match=match):
            _fit(x64).fit(x64, sample_weight=bad)


class FakeCudaArray:
    """Host memory announced through __cuda_array_interface__: the CPU build reads it by
    address, as it would read device memory on a GPU, so the protocol is checked here."""

    def __init__(self, a, strides=None, typestr=None, shape=None):
        self.a = a
        self.__cuda_array_interface__ = {
            "shape": a.shape if shape is None else shape,
            "typestr": typestr or a.dtype.str,
            "data": (a.__array_interface__["data"][0], False),
            "version": 3,
            "strides": strides,
        }


class FakeDLPack:
    """A DLPack producer that says its memory is on CUDA device 0 (it is NumPy's)."""

    def __init__(self, a):
        self.a, self.streams = a, []

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None):
        self.streams.append(stream)
        return self.a.__dlpack__()


@pytest.mark.parametrize("wrap", [FakeCudaArray, FakeDLPack])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_protocols_are_read_in_place(wrap, dtype):
    x = blobs(dtype=dtype)
    ref = _fit(x)
    dev = wrap(x)
    km = kmeans.KMeans(5, init=x[:5], backend="cpu").fit(dev)  # host memory behind it
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(km.predict(dev), ref.labels_)
    np.testing.assert_array_equal(km.transform(dev), ref.transform(x))
    assert km.score(dev) == ref.score(x)
    if wrap is FakeDLPack:
        assert set(dev.streams) == {1}  # the producer is asked to order its work before ours


def test_dlpack_capsules_are_parsed():
    x = np.arange(12.0).reshape(4, 3)
    address, shape, strides, code, bits, lanes, dev_type, dev_id = _core.dlpack_info(x.__dlpack__())
    assert address == x.__array_interface__["data"][0] and shape == (4, 3)
    assert strides in (None, (3, 1)) and (code, bits, lanes, dev_type, dev_id) == (2, 64, 1, 1, 0)
    with pytest.raises(ValueError, match="DLPack capsule"):
        _core.dlpack_info(_named_capsule())


def _named_capsule():
    import ctypes

    make = ctypes.pythonapi.PyCapsule_New
    make.restype, make.argtypes = ctypes.py_object, [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_void_p,
    ]
    return make(ctypes.c_void_p(8), b"used_dltensor", None)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(strides=(8, 32000)), r"must be C-contiguous"),
        (dict(typestr="<i8"), r"must be float32 or float64"),
        (dict(shape=(16000,)), r"must be 2-D"),
    ],
)
def test_device_arrays_with_other_layouts_are_refused(kw, match):
    x = blobs()
    with pytest.raises(ValueError, match=match):
        kmeans.KMeans(5).fit(FakeCudaArray(x, **kw))


def test_device_weights_must_be_device_arrays_of_the_same_dtype(x64):
    km = kmeans.KMeans(5, init=x64[:5], backend="cpu")
    w = np.ones(len(x64))
    np.testing.assert_array_equal(
        km.fit(FakeCudaArray(x64), sample_weight=FakeCudaArray(w)).labels_, _fit(x64).labels_
    )
    with pytest.raises(ValueError, match="must be a device array"):
        km.fit(FakeCudaArray(x64), sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight has dtype float32"):
        km.fit(FakeCudaArray(x64), sample_weight=FakeCudaArray(w.astype(np.float32)))


def test_output_device_needs_cupy_or_torch_input(x64):
    km = kmeans.KMeans(5, init=x64[:5], output="device", backend="cpu")
    # host input: NumPy out, whatever output says
    assert isinstance(km.fit_predict(x64), np.ndarray)
    with pytest.raises(ValueError, match="output='device' returns CuPy arrays or PyTorch"):
        km.fit_predict(FakeCudaArray(x64))
    # predict writes device labels directly (kmeans::predict_to_device): the same refusal
    km.fit(x64)
    with pytest.raises(ValueError, match="output='device' returns CuPy arrays or PyTorch"):
        km.predict(FakeCudaArray(x64))
    assert isinstance(km.predict(x64), np.ndarray)
