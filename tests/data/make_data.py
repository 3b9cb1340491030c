#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Regenerates the small .npy/.csv files in tests/data (good and deliberately broken ones) used by
# test_io and the CLI tests. Deterministic: run it from anywhere, the bytes come out the same.
import io
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def npy_bytes(a, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, version=version, allow_pickle=True)
    return buf.getvalue()


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def main():
    grid = (np.arange(12, dtype=np.float64) * 0.5 - 1.25).reshape(4, 3)
    # Files written by NumPy itself, in every format version, read back by test_io.
    write("numpy_v1_f8.npy", npy_bytes(grid, (1, 0)))
    write("numpy_v2_f4.npy", npy_bytes(grid.astype(np.float32), (2, 0)))
    write("numpy_v3_f8.npy", npy_bytes(grid, (3, 0)))
    write("numpy_i4_1d.npy", npy_bytes(np.array([3, -1, 7, 0], dtype=np.int32)))

    # A tiny, well-separated 2-D data set (two clusters of three points) for the CLI.
    tiny = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0],
                     [10.0, 10.0], [10.0, 11.0], [11.0, 10.0]])
    write("tiny.npy", npy_bytes(tiny))
    write("tiny_f32.npy", npy_bytes(tiny.astype(np.float32)))
    with open(path("tiny.csv"), "w", newline="") as f:
        f.write("x,y\r\n")  # a header row and CRLF line ends, both tolerated
        for r in tiny:
            f.write("%r, %r\r\n" % (r[0], r[1]))
    write("tiny_init.npy", npy_bytes(np.array([[0.0, 0.0], [10.0, 10.0]])))

    # Broken or unsupported inputs: each must give one error line and exit code 1.
    with open(path("bad_nan.csv"), "w") as f:
        f.write("1,2\n3,nan\n5,6\n")
    bad_inf = tiny.copy()
    bad_inf[4, 1] = np.inf
    write("bad_inf.npy", npy_bytes(bad_inf))
    write("bad_cols0.npy", npy_bytes(np.zeros((5, 0))))
    write("bad_1d.npy", npy_bytes(np.arange(5, dtype=np.float64)))
    write("bad_int64.npy", npy_bytes(np.arange(6, dtype=np.int64).reshape(3, 2)))
    write("bad_bigendian.npy", npy_bytes(tiny.astype(">f8")))
    write("bad_fortran.npy", npy_bytes(np.asfortranarray(tiny)))
    write("bad_object.npy", npy_bytes(np.array([[1, "a"], [2, "b"]], dtype=object)))
    good = npy_bytes(tiny)
    write("bad_truncated_header.npy", good[:40])
    write("bad_truncated_data.npy", good[:-8])
    write("bad_extra_data.npy", good + b"\0" * 8)
    # Version 2.0 header whose length field claims 2 GiB.
    write("bad_huge_header.npy", b"\x93NUMPY\x02\x00" + (0x7FFFFFFF).to_bytes(4, "little") + b"{}")
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"
    total = -(-(10 + len(hdr) + 1) // 64) * 64  # pad like NumPy: data on a 64-byte boundary
    hdr += b" " * (total - 10 - len(hdr) - 1) + b"\n"
    write("bad_overflow_shape.npy", b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr)
    write("bad_empty.npy", b"")
    write("bad_empty.csv", b"")
    with open(path("bad_ragged.csv"), "w") as f:
        f.write("1,2\n3,4\n5\n")
    with open(path("bad_text.csv"), "w") as f:
        f.write("a,b\n1,2\n3,abc\n")
    with open(path("bad_empty_field.csv"), "w") as f:
        f.write("1,2\n3,\n")
    with open(path("big_for_float32.csv"), "w") as f:
        f.write("1,2\n1e300,4\n5,6\n")
    write("bad_init_shape.npy", npy_bytes(np.zeros((2, 3))))
    write("centroids_d3.npy", npy_bytes(np.zeros((2, 3))))

    # Sample weights for tiny: doubling (0,0) and (11,10) moves the weighted means to
    # (1/4, 1/4) and (21/2, 41/4); the weighted inertia is 3/2 + 7/4 = 13/4.
    weights = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 2.0])
    write("weights_tiny.npy", npy_bytes(weights))                       # 1-D (6,)
    with open(path("weights_tiny_col.csv"), "w") as f:                  # one column, a header
        f.write("weight\n" + "".join("%r\n" % w for w in weights))
    write("weights_tiny_col.npy", npy_bytes(weights.reshape(6, 1)))     # (6, 1)
    negative = weights.copy()
    negative[2] = -1.0
    write("bad_weights_negative.npy", npy_bytes(negative))
    with open(path("bad_weights_nan.csv"), "w") as f:
        f.write("1\nnan\n1\n1\n1\n1\n")
    write("bad_weights_zero.npy", npy_bytes(np.zeros(6)))
    write("bad_weights_short.npy", npy_bytes(weights[:5]))
    write("bad_weights_2d.npy", npy_bytes(np.ones((6, 2))))
    with open(path("bad_weights_ragged.csv"), "w") as f:
        f.write("1\n1\n1,2\n1\n1\n1\n")
    # Four points at two locations: k = 3 cannot find three distinct clusters (a warning).
    with open(path("duplicates.csv"), "w") as f:
        f.write("0,0\n0,0\n5,5\n5,5\n")


if __name__ == "__main__":
    main()
