# SPDX-License-Identifier: Apache-2.0
"""kmeans.MiniBatchKMeans: scikit-learn's MiniBatchKMeans interface (fit, partial_fit and the
fitted attributes) over the library's mini-batch k-means, one C++ KMeans kept between calls."""

import math
import numbers
import os

import numpy as np

from . import _arrays, _core
from ._estimator import _BaseKMeans, _check_int, _raise_from_library, _seed

_MODELS = {np.dtype(np.float32): _core.Model_float32, np.dtype(np.float64): _core.Model_float64}


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch k-means (scikit-learn's MiniBatchKMeans rules) on the GPU (CUDA) or the CPU.

    Parameters follow scikit-learn's ``sklearn.cluster.MiniBatchKMeans`` where the library has
    them:

    n_clusters : int, default 8
    init : {"k-means++", "random", "k-means||"}, array of shape (n_clusters, n_features) or a
        callable ``init(X, n_clusters, random_state) -> array``, default "k-means++". The
        drawn inits run on min(n, max(3 batch_size, 3 n_clusters)) rows (scikit-learn's
        default init_size, which is not a parameter here).
    max_iter : int, default 100; epochs: a fit runs at most max_iter * n / batch_size steps
    batch_size : int >= 1, default 1024; rows per step, drawn uniformly with replacement
    tol : float, default 0.0; stop when a step moves the centres by at most tol (squared,
        relative to the mean feature variance, as scikit-learn); 0 disables the rule
    max_no_improvement : int >= 1 or None, default 10; stop after this many steps without
        improvement of the smoothed batch inertia (None disables the rule)
    n_init : int or "auto", default "auto" ("auto": 3 for "random", else 1); the init with
        the lowest inertia on a validation sample is kept
    reassignment_ratio : float >= 0, default 0.01; centres whose count falls below this
        fraction of the largest count move to random batch rows (0 disables)
    random_state : None, int, numpy RandomState or Generator
    metric : {"euclidean", "cosine"}, default "euclidean"; "cosine" as KMeans's (every
        updated centre is put back on the unit sphere)
    backend : {"auto", "cpu", "cuda", "reference"}; "auto" uses a usable GPU, else the CPU
    n_threads : int or None (None: OpenMP's default)
    verbose : bool or int; prints one line per step on stdout
    callback : None or callable(IterationInfo) -> bool, called after every step (iteration =
        the step, sse = its batch's SSE); returning False stops the fit
    output : {"numpy", "device"}, as KMeans's

    scikit-learn's compute_labels (labels are always computed) and init_size are not
    parameters.

    Fitted attributes: cluster_centers_, labels_ and inertia_ (of the whole data after fit; of
    the last batch after partial_fit), n_iter_ (epochs begun), n_steps_ (steps of the fit, or
    partial_fit calls so far), n_features_in_, sse_history_ (the batch SSE of each step),
    backend_, timings_, converged_, cluster_sizes_, n_empty_relocated_, warnings_.

    partial_fit continues from the object's state (the per-centre counts and the generator of
    the reassignments); that state survives pickling and save / load, so a restored object
    continues exactly as the original. ``save(path)`` writes the library's model file
    ("algorithm": "minibatch"); ``MiniBatchKMeans.load(path)`` reads one.
    """

    _N_INIT_AUTO_RANDOM = 3  # scikit-learn's MiniBatchKMeans

    def __init__(
        self,
        n_clusters=8,
        *,
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
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.random_state = random_state
        self.metric = metric
        self.backend = backend
        self.n_threads = n_threads
        self.verbose = verbose
        self.callback = callback
        self.output = output

    # ---------------------------------------------------------------- params
    def _minibatch_params(self):
        """(batch_size, max_no_improvement, reassignment_ratio) in the library's terms."""
        batch = _check_int("batch_size", self.batch_size, 1)
        if self.max_no_improvement is None:
            patience = 0  # the library's "disabled"
        else:
            patience = _check_int("max_no_improvement", self.max_no_improvement, 1)
        ratio = self.reassignment_ratio
        if isinstance(ratio, (bool, np.bool_)) or not isinstance(ratio, numbers.Real):
            raise TypeError("reassignment_ratio must be a float, got %r" % (ratio,))
        if not (math.isfinite(ratio) and ratio >= 0):
            raise ValueError("reassignment_ratio = %r must be finite and >= 0" % (ratio,))
        if self.tol < 0:
            raise ValueError("tol = %r must be >= 0" % (self.tol,))
        return batch, patience, float(ratio)

    def _model_for(self, dtype, keep):
        """The kept C++ model when `keep` and it has this dtype, else a new one."""
        model = getattr(self, "_model", None)
        if not (keep and model is not None and model.dtype == dtype):
            model = _Model(dtype)
        return model

    # ---------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Compute the mini-batch k-means clustering of X (n_samples, n_features)."""
        self._fit(X, sample_weight)
        return self

    def _fit(self, X, sample_weight):
        """fit; returns the Data of X."""
        data = self._data(X, reset=True)
        self._run(data, sample_weight, partial=False)
        return data

    def partial_fit(self, X, y=None, sample_weight=None):
        """One mini-batch step over the batch X (all its rows): the first call (on an object
        that is not fitted) initialises from X; later calls move the centres towards X's and
        update the counts. labels_ and inertia_ become X's."""
        fitted = getattr(self, "_model", None) is not None
        data = self._data(X, reset=not fitted)
        model = getattr(self, "_model", None)
        if fitted and data.dtype != model.dtype:
            if data.on_device:
                raise ValueError(
                    "X has dtype %s; the model is %s (device arrays are not converted)"
                    % (data.dtype, model.dtype)
                )
            data = _arrays.host(np.ascontiguousarray(data.array, dtype=model.dtype))
        self._run(data, sample_weight, partial=True)
        return self

    def _run(self, data, sample_weight, partial):
        k, init, centroids, n_init, max_iter, tol, threads = self._check_params(data)
        batch, patience, ratio = self._minibatch_params()
        w_address, w_size, w_keep = self._weights(sample_weight, data)
        seed = _seed(self.random_state)
        model = self._model_for(data.dtype, keep=True)
        model.core.set_params(
            k, init, n_init, max_iter, tol, seed, self.backend, threads, batch, patience, ratio,
            self.metric,
        )
        call = model.core.partial_fit if partial else model.core.fit
        c_address = 0 if centroids is None else centroids.__array_interface__["data"][0]
        c_size = 0 if centroids is None else centroids.size
        try:
            r = call(
                data.address,
                data.n,
                data.d,
                c_address,
                c_size,
                w_address,
                w_size,
                self._on_iteration(),
            )
        except ValueError as e:
            _raise_from_library(e)
        del w_keep, centroids
        self._model = model
        self._set_result(r)
        self.n_steps_ = int(r["n_steps"])

    # ---------------------------------------------------------------- state
    def __getstate__(self):
        """Pickles the kept C++ model as its model text (which holds partial_fit's state)."""
        state = dict(super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__)
        model = state.pop("_model", None)
        if model is not None:
            state["_model_text"] = (model.dtype.name, model.core.to_json())
        return state

    def __setstate__(self, state):
        state = dict(state)
        text = state.pop("_model_text", None)
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)
        if text is not None:
            self._model = _Model(np.dtype(text[0]), _MODELS[np.dtype(text[0])].from_json(text[1]))

    # ---------------------------------------------------------------- model files
    def save(self, path):
        """Write the fitted model (what the last fit, partial_fit or load produced, with
        partial_fit's state) to `path`: the library's model file, "algorithm": "minibatch"
        (README, "Model files"). Written to a temporary beside `path` and renamed over it."""
        self._check_fitted()
        self._model.core.save(os.fspath(path))

    @classmethod
    def load(cls, path):
        """A fitted MiniBatchKMeans read from a mini-batch model file (written by save,
        ``kmeans fit --batch-size N --model-out`` or C++ KMeans<T>::save): the params, the
        fitted attributes but labels_ and timings_, and partial_fit's state (a loaded object
        continues under partial_fit as the saved one would). A Lloyd model, a truncated,
        foreign or newer-format file raises ValueError naming the problem."""
        path = os.fspath(path)
        m = _core.load_model(path)
        p = m["params"]
        if p["batch_size"] < 1:
            raise ValueError(
                "%s holds a Lloyd model (no batch_size): load it with kmeans.KMeans.load" % path
            )
        dtype = m["centroids"].dtype
        core = _MODELS[dtype].load(path)
        est = cls(
            n_clusters=int(p["k"]),
            init=m["centroids"].copy() if p["init"] == "array" else p["init"],
            max_iter=int(p["max_iter"]),
            batch_size=int(p["batch_size"]),
            tol=float(p["tol"]),
            max_no_improvement=None if p["max_no_improvement"] == 0 else int(p["max_no_improvement"]),
            n_init=int(p["n_init"]),
            reassignment_ratio=float(p["reassignment_ratio"]),
            random_state=int(p["seed"]),
            backend=p["backend"],
            n_threads=None if p["n_threads"] == 0 else int(p["n_threads"]),
            metric=p.get("metric", "euclidean"),
        )
        r = core.result()
        est._model = _Model(dtype, core)
        est.n_features_in_ = r["centroids"].shape[1]
        est._set_result(r, warn=False)
        del est.labels_, est.timings_  # not stored in the file
        est.n_steps_ = int(r["n_steps"])
        return est


class _Model:
    """The C++ KMeans of one dtype that a MiniBatchKMeans keeps between calls."""

    __slots__ = ("dtype", "core")

    def __init__(self, dtype, core=None):
        self.dtype = np.dtype(dtype)
        self.core = _MODELS[self.dtype]() if core is None else core
