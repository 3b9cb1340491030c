#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# ctest's entry to the pytest suite: runs one test file; exits 77 (ctest's skip) with the reason
# when this Python lacks NumPy or pytest, and fails when pytest collected no test.
import sys

try:
    import numpy  # noqa: F401
except ImportError:
    print("skipped: %s has no NumPy (Debian: python3-numpy)" % sys.executable)
    sys.exit(77)
try:
    import pytest
except ImportError:
    print("skipped: %s has no pytest (Debian: python3-pytest)" % sys.executable)
    sys.exit(77)

code = pytest.main(["-q", "-rs", "-p", "no:cacheprovider", *sys.argv[1:]])
if code == pytest.ExitCode.NO_TESTS_COLLECTED:
    print("error: no test collected from %s" % sys.argv[1:])
    sys.exit(1)
sys.exit(int(code))
