# SPDX-License-Identifier: Apache-2.0
"""The data path: NumPy arrays in place (converted once when their layout or dtype needs it)
and CUDA device arrays (__dlpack__ / __cuda_array_interface__) by address, in place."""

import numpy as np

from . import _core

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# DLPack device types (dlpack.h): memory the CUDA backend can read in place.
_DL_CUDA, _DL_CUDA_MANAGED = 2, 13
_DL_FLOAT = 2


class Data:
    """An n x d float32/float64 C-contiguous array, where the library can read it.

    address: its first element (host or device memory); keep: what must stay alive while the
    library reads it; source: the caller's object (for output="device").
    """

    __slots__ = ("address", "n", "d", "dtype", "on_device", "keep", "source", "array")

    def __init__(self, address, n, d, dtype, on_device, keep, source, array=None):
        self.address, self.n, self.d, self.dtype = int(address), int(n), int(d), np.dtype(dtype)
        self.on_device, self.keep, self.source, self.array = on_device, keep, source, array


def host(array):
    """Data for a NumPy array that is already 2-D, float32/float64 and C-contiguous."""
    assert array.dtype in _FLOATS and array.ndim == 2 and array.flags.c_contiguous
    return Data(
        array.__array_interface__["data"][0],
        array.shape[0],
        array.shape[1],
        array.dtype,
        False,
        array,
        array,
        array,
    )


def host_1d(values, dtype):
    """The address of a 1-D C-contiguous copy-if-needed of `values` in `dtype`, and the array."""
    a = np.ascontiguousarray(values, dtype=dtype)
    return a.__array_interface__["data"][0], a


def _describe(shape, typestr):
    return "shape %s, dtype %s" % (tuple(shape), typestr)


def _check_device_layout(what, shape, dtype, strides):
    """Device arrays are used in place, never converted: 2-D, float32/64, C-contiguous."""
    if len(shape) != 2:
        raise ValueError(
            "%s: a device array must be 2-D (n_samples, n_features); got %s"
            % (what, _describe(shape, dtype))
        )
    if dtype not in _FLOATS:
        raise ValueError(
            "%s: a device array must be float32 or float64 (device arrays are not "
            "converted: use x.astype(...) on the device); got %s" % (what, _describe(shape, dtype))
        )
    n, d = shape
    if strides is not None and ((d > 1 and strides[1] != 1) or (n > 1 and strides[0] != d)):
        raise ValueError(
            "%s: a device array must be C-contiguous (device arrays are not "
            "copied: pass a contiguous copy); got %s with strides %s (in elements)"
            % (what, _describe(shape, dtype), tuple(strides))
        )


def device(obj, what="X", ndim=2):
    """Data for a CUDA device array, or None when `obj` is not one.

    __dlpack__ is preferred (its stream argument orders the producer's work before the legacy
    default stream, where the library reads); __cuda_array_interface__ otherwise (its "stream",
    when given, is synchronised first).
    """
    dl_device = getattr(obj, "__dlpack_device__", None)
    if dl_device is not None and hasattr(obj, "__dlpack__"):
        try:
            dev_type, _ = dl_device()
        except Exception:  # noqa: BLE001 - not a usable DLPack producer; try the others
            dev_type = None
        if dev_type in (_DL_CUDA, _DL_CUDA_MANAGED):
            try:
                capsule = obj.__dlpack__(stream=1)
            except TypeError:
                capsule = obj.__dlpack__()
            address, shape, strides, code, bits, lanes, _, _ = _core.dlpack_info(capsule)
            if code != _DL_FLOAT or lanes != 1 or bits not in (32, 64):
                dtype = "code %d, %d bits x %d lanes" % (code, bits, lanes)
            else:
                dtype = np.dtype(np.float32 if bits == 32 else np.float64)
            if ndim == 1:
                shape = tuple(shape) + (1,)
                strides = None if strides is None else tuple(strides) + (1,)
            _check_device_layout(what, shape, dtype, strides)
            return Data(address, shape[0], shape[1], dtype, True, (obj, capsule), obj)
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is None:
        return None
    shape = tuple(cai["shape"])
    dtype = np.dtype(cai["typestr"])
    strides = cai.get("strides")
    if ndim == 1:
        shape = shape + (1,)
        strides = None if strides is None else tuple(strides) + (dtype.itemsize,)
    strides_elems = None
    if strides is not None:
        strides_elems = tuple(s // dtype.itemsize for s in strides)
    _check_device_layout(what, shape, dtype, strides_elems)
    stream = cai.get("stream")
    if stream is not None and cai.get("version", 0) >= 3:
        _core.stream_synchronize(int(stream))
    return Data(cai["data"][0], shape[0], shape[1], dtype, True, obj, obj)


def to_output(array, like, output):
    """A result as NumPy (output="numpy") or on the device of `like` (output="device")."""
    if output != "device" or like is None:
        return array
    module = type(like).__module__.split(".")[0]
    if module == "cupy":
        import cupy  # noqa: PLC0415 - only when the caller already uses it

        return cupy.asarray(array)
    if module == "torch":
        import torch  # noqa: PLC0415

        return torch.as_tensor(array, device=like.device)
    raise ValueError(
        "output='device' returns CuPy arrays or PyTorch tensors; the input is a %s"
        % type(like).__name__
    )


def device_labels(like, n):
    """An uninitialised int32 array of n labels on the device of `like` (CuPy or PyTorch), for
    the library to write (output="device")."""
    module = type(like).__module__.split(".")[0]
    if module == "cupy":
        import cupy  # noqa: PLC0415 - only when the caller already uses it

        with cupy.cuda.Device(like.device.id):
            return cupy.empty(n, dtype=cupy.int32)
    if module == "torch":
        import torch  # noqa: PLC0415

        return torch.empty(n, dtype=torch.int32, device=like.device)
    raise ValueError(
        "output='device' returns CuPy arrays or PyTorch tensors; the input is a %s"
        % type(like).__name__
    )


def device_address(array):
    """The device address of a CuPy array or PyTorch tensor made by device_labels."""
    if hasattr(array, "data_ptr"):
        return int(array.data_ptr())
    return int(array.data.ptr)
