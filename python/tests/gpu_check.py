#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The GPU kit's check of the Python CUDA-array path: device arrays (raw driver allocations,
# CuPy arrays, PyTorch CUDA tensors) are fitted in place on the CUDA backend and agree with the
# NumPy path.
"""usage: PYTHONPATH=build/python python3 python/tests/gpu_check.py

Needs only NumPy and a GPU: device memory made with the CUDA driver API through ctypes
(__cuda_array_interface__) is always checked; CuPy (__dlpack__ and __cuda_array_interface__)
and PyTorch CUDA tensors (__dlpack__) too when they are installed.
Exit 0: every check passed; 77: no usable GPU (reason printed); 1: a check failed.
One line per check on stdout."""

import ctypes
import sys

import numpy as np

import kmeans

failures = []


def check(name, ok, detail=""):
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))
    if not ok:
        failures.append(name)


def blobs(n, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d))
    return (centers[rng.integers(0, k, size=n)] + rng.normal(0, 1.0, size=(n, d))).astype(dtype)


class DriverArray:
    """A device copy of a NumPy array in memory from cuMemAlloc (libcuda.so.1 via ctypes, in
    the primary context, which the library's CUDA runtime uses too), exposed through
    __cuda_array_interface__ version 3."""

    lib = None

    @classmethod
    def _lib(cls):
        if cls.lib is None:
            lib = ctypes.CDLL("libcuda.so.1")
            lib.cuMemAlloc_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]
            lib.cuMemcpyHtoD_v2.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
            lib.cuMemFree_v2.argtypes = [ctypes.c_uint64]
            dev, ctx = ctypes.c_int(), ctypes.c_void_p()
            for call in (
                lambda: lib.cuInit(0),
                lambda: lib.cuDeviceGet(ctypes.byref(dev), 0),
                lambda: lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev),
                lambda: lib.cuCtxSetCurrent(ctx),
            ):
                _cu(call())
            cls.lib = lib
        return cls.lib

    def __init__(self, a):
        a = np.ascontiguousarray(a)
        self.ptr = ctypes.c_uint64()
        lib = self._lib()
        _cu(lib.cuMemAlloc_v2(ctypes.byref(self.ptr), max(a.nbytes, 1)))
        _cu(lib.cuMemcpyHtoD_v2(self.ptr.value, a.ctypes.data, a.nbytes))
        self.__cuda_array_interface__ = {
            "shape": a.shape,
            "typestr": a.dtype.str,
            "data": (self.ptr.value, False),
            "version": 3,
            "strides": None,
            "stream": None,
        }

    def __del__(self):
        if self.lib is not None and self.ptr.value:
            self.lib.cuMemFree_v2(self.ptr.value)


def _cu(status):
    if status != 0:
        raise RuntimeError("CUDA driver call failed with CUresult %d" % status)


def run(producer, to_device, from_device):
    for dtype in (np.float32, np.float64):
        x = blobs(200_000, 16, 8, dtype)
        init = x[:8].copy()
        tag = "%s %s" % (producer, np.dtype(dtype).name)
        host = kmeans.KMeans(8, init=init, max_iter=50, backend="cuda").fit(x)
        xd = to_device(x)
        dev = kmeans.KMeans(8, init=init, max_iter=50).fit(xd)  # auto: device data -> cuda
        check(tag + ": backend of device input", dev.backend_ == "cuda", dev.backend_)
        check(tag + ": labels equal the NumPy path's", np.array_equal(dev.labels_, host.labels_))
        check(
            tag + ": inertia equals the NumPy path's",
            abs(dev.inertia_ - host.inertia_) <= 1e-6 * host.inertia_,
            "%r vs %r" % (dev.inertia_, host.inertia_),
        )
        check(tag + ": predict on device", np.array_equal(dev.predict(xd), host.labels_))
        t = dev.transform(xd)
        check(
            tag + ": transform on device",
            isinstance(t, np.ndarray) and np.allclose(t, host.transform(x), rtol=1e-5),
        )
        check(
            tag + ": score on device",
            abs(dev.score(xd) - host.score(x)) <= 1e-6 * abs(host.score(x)),
        )
        # MiniBatchKMeans: device data gives the host data's bits (the batches are gathered
        # on the device); partial_fit on device slices agrees with it on host slices.
        mb = dict(init=init, batch_size=2048, random_state=3, backend="cuda")
        mh = kmeans.MiniBatchKMeans(8, **mb).fit(x)
        md = kmeans.MiniBatchKMeans(8, **mb).fit(xd)
        check(tag + ": MiniBatchKMeans on device data = host data",
              md.cluster_centers_.tobytes() == mh.cluster_centers_.tobytes()
              and md.n_steps_ == mh.n_steps_ and np.array_equal(md.labels_, mh.labels_),
              "%d vs %d steps" % (md.n_steps_, mh.n_steps_))
        ph = kmeans.MiniBatchKMeans(8, **mb)
        pd = kmeans.MiniBatchKMeans(8, **mb)
        for s in range(0, 5 * 4096, 4096):
            ph.partial_fit(x[s:s + 4096])
            pd.partial_fit(to_device(x[s:s + 4096]))
        check(tag + ": MiniBatchKMeans.partial_fit on device slices = host slices",
              pd.cluster_centers_.tobytes() == ph.cluster_centers_.tobytes() and pd.n_steps_ == 5)
        w = np.linspace(0.5, 2.0, len(x)).astype(dtype)
        hw = kmeans.KMeans(8, init=init, max_iter=50, backend="cuda").fit(x, sample_weight=w)
        dw = kmeans.KMeans(8, init=init, max_iter=50).fit(xd, sample_weight=to_device(w))
        check(tag + ": device sample_weight", np.array_equal(dw.labels_, hw.labels_))
        if from_device is None:  # not CuPy / PyTorch: output="device" has no type to give
            try:
                kmeans.KMeans(8, init=init, max_iter=5, output="device").fit_predict(xd)
                check(tag + ": output='device' refused for this producer", False, "no error")
            except ValueError as e:
                check(tag + ": output='device' refused for this producer", True, str(e)[:80])
            continue
        out = kmeans.KMeans(8, init=init, max_iter=50, output="device").fit_predict(xd)
        check(
            tag + ": output='device' stays on the device",
            type(out).__module__.split(".")[0] == producer
            and np.array_equal(from_device(out), host.labels_),
            type(out).__name__,
        )
        # predict writes its labels straight into a device array (kmeans::predict_to_device)
        dp = kmeans.KMeans(8, init=init, max_iter=50, output="device").fit(xd)
        pl = dp.predict(xd)
        check(
            tag + ": output='device' predict writes device labels",
            type(pl).__module__.split(".")[0] == producer
            and str(getattr(pl, "dtype", "")).endswith("int32")
            and np.array_equal(from_device(pl), host.labels_),
            type(pl).__name__,
        )
        if from_device is not None:  # centroids given as a device array of the same kind
            di = kmeans.KMeans(8, init=to_device(init), max_iter=50).fit(xd)
            check(tag + ": device init array", np.array_equal(di.labels_, host.labels_))
        # the CPU backend cannot read device memory: a clear error, not a crash
        try:
            kmeans.KMeans(8, init=init, backend="cpu").fit(xd)
            check(tag + ": backend='cpu' on device data is refused", False, "no error")
        except ValueError as e:
            check(tag + ": backend='cpu' on device data is refused", True, str(e)[:100])


def main():
    ok, why = kmeans.cuda_available()
    if not ok:
        print("skipped: no usable GPU: %s" % why)
        return 77
    run("cuda-driver", DriverArray, None)
    try:
        import cupy
    except ImportError:
        print("cupy not installed: its checks are skipped")
    else:
        run("cupy", cupy.asarray, cupy.asnumpy)
        # a non-contiguous CuPy view is refused with the reason
        try:
            kmeans.KMeans(2).fit(cupy.asarray(blobs(100, 4, 2, np.float32))[:, ::2])
            check("cupy: strided view refused", False, "no error")
        except ValueError as e:
            check("cupy: strided view refused", "C-contiguous" in str(e), str(e)[:100])
    try:
        import torch
    except ImportError:
        print("torch not installed: its checks are skipped")
    else:
        if torch.cuda.is_available():
            run("torch", lambda a: torch.from_numpy(a).cuda(), lambda t: t.cpu().numpy())
        else:
            print("torch has no CUDA device: its checks are skipped")
    print("%d failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
