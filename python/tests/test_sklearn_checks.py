# SPDX-License-Identifier: Apache-2.0
# scikit-learn's check_estimator on kmeans.KMeans and kmeans.MiniBatchKMeans. The checks that
# fail are the ones that sklearn.cluster.KMeans (MiniBatchKMeans) itself marks as expected
# failures, for the same reason (README.md).
import warnings

import pytest

import kmeans

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")
from sklearn.utils import estimator_checks  # noqa: E402

VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2])
# Random initialisation draws differently from weighted points than from repeated ones, so a
# weight of 0 (or 2) is not the same fit as removing (or repeating) the point; scikit-learn's
# own KMeans lists these checks as expected failures for this reason.
REASON = "sample_weight is not equivalent to removing/repeating samples (random init)"
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": REASON,  # scikit-learn >= 1.6
    "check_sample_weights_invariance": REASON,  # its name before 1.6
}


ESTIMATORS = [kmeans.KMeans, kmeans.MiniBatchKMeans]


def _run_old_style(estimator):
    """scikit-learn < 1.6: run every generated check; return (names run, failures)."""
    ran, failed = [], {}
    for est, check in estimator_checks.check_estimator(estimator, generate_only=True):
        name = getattr(check, "func", check).__name__
        ran.append(name)
        try:
            check(est)
        except Exception as e:  # noqa: BLE001 - a SkipTest or a failed check
            if type(e).__name__ != "SkipTest":
                failed[name] = e
    return ran, failed


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_check_estimator(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if VERSION >= (1, 6):
            results = estimator_checks.check_estimator(
                cls(), on_fail=None, expected_failed_checks=EXPECTED_FAILURES
            )
            ran = [r["check_name"] for r in results]
            failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
        elif VERSION >= (1, 2):
            ran, failed = _run_old_style(cls())
        else:
            pytest.skip(
                "scikit-learn %s is older than 1.2, the oldest whose check_estimator "
                "this suite runs" % sklearn.__version__
            )
    assert len(ran) > 30, ran
    unexpected = {k: v for k, v in failed.items() if k not in EXPECTED_FAILURES}
    assert not unexpected, unexpected
