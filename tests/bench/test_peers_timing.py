#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/peers.py's scikit-learn timings against a cost model of scikit-learn's Lloyd loop.

The model is scikit-learn's _kmeans_single_lloyd: a fixed cost per fit, max_iter iterations
(an E-step and an M-step each) that stop after the iteration whose labels repeat those of the
one before (strict convergence, n_iter_ = that iteration), and one more E-step when the fit did
not stop that way. Whatever the stopping point, the reported time per iteration must be the
iterations' mean (E + M when they are even).
Standard library only (no numpy, no scikit-learn), so it runs wherever the bench builds.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import peers  # noqa: E402

FIXED, E_STEP, M_STEP = 0.3, 1.0, 0.25


class Fitted:
    def __init__(self, n_iter):
        self.n_iter_ = n_iter


def model(converges_at):
    """fit(max_iter) -> (seconds, Fitted) for a fit whose labels first repeat at converges_at."""
    def fit(max_iter):
        strict = converges_at <= max_iter
        n_iter = converges_at if strict else max_iter
        seconds = FIXED + n_iter * (E_STEP + M_STEP) + (0.0 if strict else E_STEP)
        return seconds, Fitted(n_iter)
    return fit


class SklearnPerIter(unittest.TestCase):
    def per_iter(self, iters, converges_at):
        per, whole, how, km = peers.sklearn_per_iter(model(converges_at), iters, budget=0.0)
        self.assertEqual(km.n_iter_, min(iters, converges_at))
        self.assertEqual(len(per), len(whole))
        return per[0], how

    def test_runs_out_of_iterations(self):
        for iters in (2, 4, 10):
            per, how = self.per_iter(iters, converges_at=10**6)
            self.assertAlmostEqual(per, E_STEP + M_STEP, msg=how)
            self.assertIn(f"fit(max_iter={iters}) - fit(max_iter=1)", how)

    def test_stops_early(self):
        # The old method, (fit(n_iter_) - fit(1)) / (n_iter_ - 1), gives (2 (E + M) - E) / 2 =
        # 0.75 here at n_iter_ = 3: this test fails on it.
        for converges_at in (3, 4, 7):
            per, how = self.per_iter(10, converges_at)
            self.assertAlmostEqual(per, E_STEP + M_STEP, msg=how)
            self.assertIn(f"stops early at n_iter_ = {converges_at}", how)

    def test_stops_at_the_second_iteration(self):
        # No two fits that both run out of iterations: the whole fit over n_iter_ (fixed costs
        # included, so an over-estimate), and the text says so.
        per, how = self.per_iter(10, converges_at=2)
        self.assertAlmostEqual(per, (FIXED + 2 * (E_STEP + M_STEP)) / 2)
        self.assertEqual(how, "median over repeats of fit(max_iter=iters) / n_iter_")


class Clock:
    """Stands in for the time module inside peers: the model's steps advance it."""
    now = 0.0

    @classmethod
    def perf_counter(cls):
        return cls.now


class LloydModule:
    """Stands in for sklearn.cluster._kmeans: one call per E-step (+ M-step)."""

    @staticmethod
    def lloyd_iter_chunked_dense(cost):
        Clock.now += cost


def stepped_model(module, converges_at, repair):
    """fit(max_iter) -> (seconds, Fitted) that calls module's step as scikit-learn does; the
    second iteration also repairs an empty cluster (costs `repair` more)."""
    def fit(max_iter):
        t0 = Clock.now
        Clock.now += FIXED / 2
        n_iter = 0
        for i in range(max_iter):
            module.lloyd_iter_chunked_dense(E_STEP + M_STEP + (repair if i == 1 else 0.0))
            n_iter = i + 1
            if n_iter == converges_at:
                break
        if n_iter != converges_at:
            module.lloyd_iter_chunked_dense(E_STEP)  # the final E-step
        Clock.now += FIXED / 2
        return Clock.now - t0, Fitted(n_iter)
    return fit


class LloydStepsPerIter(unittest.TestCase):
    def setUp(self):
        self.saved = peers.time
        peers.time = Clock

    def tearDown(self):
        peers.time = self.saved

    def test_mean_of_the_loop_steps(self):
        module = LloydModule()
        step = module.lloyd_iter_chunked_dense
        for iters, converges_at, repair in ((10, 3, 4.0), (10, 10**6, 4.0), (1, 10**6, 0.0),
                                            (50, 2, 0.0)):
            got = peers.lloyd_steps_per_iter(module, stepped_model(module, converges_at, repair),
                                             iters, budget=0.0)
            self.assertIsNotNone(got)
            per, whole, how, km = got
            n = km.n_iter_
            self.assertEqual(n, min(iters, converges_at))
            expect = E_STEP + M_STEP + (repair / n if n >= 2 else 0.0)
            self.assertAlmostEqual(per[0], expect, msg=(iters, converges_at))
            self.assertGreater(whole[0], per[0])
            self.assertIn("lloyd_iter_chunked_dense", how)
            self.assertIs(module.lloyd_iter_chunked_dense, step)  # put back

    def test_another_loop_is_refused(self):
        class Missing:
            pass
        self.assertIsNone(peers.lloyd_steps_per_iter(Missing(), model(3), 10, budget=0.0))
        module = LloydModule()
        twice = stepped_model(module, 3, 0.0)

        def fit(max_iter):  # two steps per iteration: not scikit-learn's loop
            module.lloyd_iter_chunked_dense(0.0)
            module.lloyd_iter_chunked_dense(0.0)
            module.lloyd_iter_chunked_dense(0.0)
            return twice(max_iter)
        self.assertIsNone(peers.lloyd_steps_per_iter(module, fit, 10, budget=0.0))


if __name__ == "__main__":
    unittest.main()
