# SPDX-License-Identifier: Apache-2.0
"""kmeans.KMeans: scikit-learn's KMeans interface (names, defaults, fitted attributes) over the
C++ library. scikit-learn is optional: when it is importable the estimator inherits its
BaseEstimator / ClusterMixin / TransformerMixin and validates input with its check_array."""

import collections
import numbers
import os
import sys
import warnings

import numpy as np

from . import _arrays, _core

try:
    from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin

    _BASES = (ClusterMixin, TransformerMixin, BaseEstimator)
    try:  # get_feature_names_out: "kmeans0", "kmeans1", ... as sklearn.cluster.KMeans
        from sklearn.base import ClassNamePrefixFeaturesOutMixin

        _BASES = (ClassNamePrefixFeaturesOutMixin,) + _BASES
    except ImportError:
        pass
    try:  # scikit-learn >= 1.6
        from sklearn.utils.validation import validate_data as _sk_validate_data
    except ImportError:
        _sk_validate_data = None
    from sklearn.utils.validation import check_is_fitted as _sk_check_is_fitted
except ImportError:  # scikit-learn is not a dependency
    from ._fallback import BaseEstimator

    _BASES = (BaseEstimator,)
    _sk_validate_data = _sk_check_is_fitted = None

IterationInfo = collections.namedtuple("IterationInfo", "iteration sse center_shift seconds")
IterationInfo.__doc__ = """What a callback receives after each Lloyd iteration: the 0-based
iteration, the SSE of its assignment step, the total squared centroid shift of its update and
its wall time in seconds."""

_INITS = ("k-means++", "random", "k-means||")
_BACKENDS = ("auto", "cpu", "cuda", "reference")
_METRICS = ("euclidean", "cosine")
_INT32_MAX = 2**31 - 1


def _check_int(name, value, low, high=_INT32_MAX):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be an int, got %r (%s)" % (name, value, type(value).__name__))
    if not low <= value <= high:
        raise ValueError("%s = %d is out of range [%d, %d]" % (name, value, low, high))
    return int(value)


def _seed(random_state):
    """The library's 64-bit seed: the int itself, or one drawn from a NumPy generator (None:
    NumPy's global RandomState, as scikit-learn)."""
    if random_state is None:
        random_state = np.random.mtrand._rand
    if isinstance(random_state, (bool, np.bool_)):
        raise TypeError(
            "random_state must be None, an int or a NumPy generator, got %r" % (random_state,)
        )
    if isinstance(random_state, numbers.Integral):
        return _check_int("random_state", random_state, 0, 2**64 - 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, _INT32_MAX))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise TypeError(
        "random_state must be None, an int or a NumPy generator, got %r (%s)"
        % (random_state, type(random_state).__name__)
    )


# The library's messages, with the words scikit-learn's users (and its checks) look for.
_MESSAGE_NOTES = (
    (" contains NaN at row ", " (input must not contain NaN or infinity)"),
    (" contains Inf at row ", " (input must not contain NaN or infinity)"),
    ("sample_weight sums to 0", " (every sample weight is zero)"),
)


def _raise_from_library(e):
    """The library's ValueError, its message kept (with a note for some, see above)."""
    msg = str(e)
    for needle, note in _MESSAGE_NOTES:
        if needle in msg:
            raise ValueError(msg + note) from None
    raise e


def _host_array(X, what):
    """X as a 2-D float32/float64 C-contiguous NumPy array: in place when it already is one,
    else converted once (other dtypes become float64), as scikit-learn's check_array."""
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        raise TypeError("%s is a sparse matrix; kmeans needs dense data (use X.toarray())" % what)
    a = np.asarray(X)
    if a.dtype.kind == "c":
        raise ValueError(
            "%s is complex (dtype %s); complex data is not supported" % (what, a.dtype)
        )
    if a.ndim != 2:
        raise ValueError(
            "Expected 2D array, got %dD array instead: %s must be (n_samples, "
            "n_features); reshape 1-D data with .reshape(-1, 1) (one feature) or "
            ".reshape(1, -1) (one sample)" % (a.ndim, what)
        )
    dtype = a.dtype if a.dtype in _arrays._FLOATS else np.float64
    try:
        a = np.ascontiguousarray(a, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError("%s cannot be converted to float64: %s" % (what, e)) from None
    if a.shape[0] < 1:
        raise ValueError(
            "Found array with 0 sample(s) (shape=%s) while a minimum of 1 is "
            "required." % (a.shape,)
        )
    if a.shape[1] < 1:
        raise ValueError(
            "Found array with 0 feature(s) (shape=%s) while a minimum of 1 is "
            "required." % (a.shape,)
        )
    return a


class _BaseKMeans(*_BASES):
    """What KMeans and MiniBatchKMeans share: input checks, the per-iteration hook, the
    fitted attributes and predict / transform / score / fit_predict / fit_transform.
    A subclass defines __init__ (its params), _fit(X, sample_weight) -> Data and save/load."""

    # n_init = "auto" with init = "random" (or a callable): scikit-learn's KMeans runs 10.
    _N_INIT_AUTO_RANDOM = 10

    @property
    def _n_features_out(self):
        """The number of columns of transform's output (get_feature_names_out)."""
        return self.cluster_centers_.shape[0]

    # ---------------------------------------------------------------- input
    def _data(self, X, reset, what="X"):
        """Data for X: a device array in place, or a host array validated (and converted when
        needed) the way scikit-learn does; sets or checks n_features_in_."""
        dev = _arrays.device(X, what)
        if dev is not None:
            if reset:
                self.n_features_in_ = dev.d
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif dev.d != self.n_features_in_:
                raise ValueError(
                    "X has %d features, but %s is expecting %d features as "
                    "input." % (dev.d, type(self).__name__, self.n_features_in_)
                )
            return dev
        kw = dict(dtype=[np.float64, np.float32], order="C", accept_sparse=False, copy=False)
        if _sk_validate_data is not None:  # scikit-learn >= 1.6
            a = _sk_validate_data(self, X, reset=reset, ensure_all_finite=False, **kw)
        elif hasattr(self, "_validate_data"):  # older scikit-learn
            a = self._validate_data(X, reset=reset, force_all_finite=False, **kw)
        else:
            a = _host_array(X, what)
            if reset:
                self.n_features_in_ = a.shape[1]
            elif a.shape[1] != self.n_features_in_:
                raise ValueError(
                    "X has %d features, but %s is expecting %d features as "
                    "input." % (a.shape[1], type(self).__name__, self.n_features_in_)
                )
        # check_array keeps float32/float64 C-contiguous arrays as they are; be sure of it.
        a = np.ascontiguousarray(a)
        if a.dtype not in _arrays._FLOATS:
            a = a.astype(np.float64)
        return _arrays.host(a)

    def _weights(self, sample_weight, data):
        """(address, length, keep) of sample_weight beside the data (None: unweighted)."""
        if sample_weight is None:
            return 0, 0, None
        if data.on_device:
            w = _arrays.device(sample_weight, "sample_weight", ndim=1)
            if w is None:
                raise ValueError(
                    "sample_weight must be a device array (CuPy, PyTorch CUDA) when X is one"
                )
            if w.dtype != data.dtype:
                raise ValueError(
                    "sample_weight has dtype %s; the device data is %s (device "
                    "arrays are not converted)" % (w.dtype, data.dtype)
                )
            if w.n != data.n:
                raise ValueError("sample_weight has %d values; X has %d samples" % (w.n, data.n))
            return w.address, w.n, w.keep
        if isinstance(sample_weight, numbers.Number):
            sample_weight = np.full(data.n, sample_weight, dtype=data.dtype)
        w = np.asarray(sample_weight)
        if w.ndim != 1 or w.shape[0] != data.n:
            raise ValueError(
                "sample_weight has shape %s; expected (%d,), one weight per sample"
                % (w.shape, data.n)
            )
        address, w = _arrays.host_1d(w, data.dtype)
        return address, w.shape[0], w

    def _check_params(self, data):
        """The checked common params: (k, init, centroids or None, n_init, max_iter, tol,
        threads)."""
        k = _check_int("n_clusters", self.n_clusters, 1)
        max_iter = _check_int("max_iter", self.max_iter, 0)
        if isinstance(self.tol, (bool, np.bool_)) or not isinstance(self.tol, numbers.Real):
            raise TypeError("tol must be a float, got %r" % (self.tol,))
        if self.backend not in _BACKENDS:
            raise ValueError("backend = %r is not one of %s" % (self.backend, _BACKENDS))
        if self.metric not in _METRICS:
            raise ValueError("metric = %r is not one of %s" % (self.metric, _METRICS))
        if self.output not in ("numpy", "device"):
            raise ValueError("output = %r is not one of 'numpy', 'device'" % (self.output,))
        threads = 0 if self.n_threads is None else _check_int("n_threads", self.n_threads, 1)
        if self.callback is not None and not callable(self.callback):
            raise TypeError("callback must be callable or None, got %r" % (self.callback,))
        init = self.init
        if isinstance(init, str):
            if init not in _INITS:
                raise ValueError(
                    "init = %r is not one of %s, an array of shape (n_clusters, "
                    "n_features) or a callable" % (init, _INITS)
                )
            if self.n_init == "auto":
                n_init = self._N_INIT_AUTO_RANDOM if init == "random" else 1
            else:
                n_init = _check_int("n_init", self.n_init, 1)
            return k, init, None, n_init, max_iter, float(self.tol), threads
        if callable(init):
            if data.on_device:
                raise ValueError("a callable init needs host data; pass the centroids as an array")
            init = init(data.array, k, self.random_state)
        if not isinstance(init, np.ndarray) and hasattr(init, "__cuda_array_interface__"):
            # centroids on the device (CuPy, PyTorch): the library takes them from host memory
            init = init.get() if hasattr(init, "get") else init.cpu().numpy()
        c = np.ascontiguousarray(init, dtype=data.dtype)
        if c.ndim != 2 or c.shape != (k, data.d):
            raise ValueError(
                "init has shape %s; expected (n_clusters, n_features) = (%d, %d)"
                % (c.shape, k, data.d)
            )
        # one fit from the given centroids; the library warns when n_init asked for more
        n_init = 1 if self.n_init == "auto" else _check_int("n_init", self.n_init, 1)
        return k, "array", c, n_init, max_iter, float(self.tol), threads

    def _set_result(self, r, warn=True):
        """The fitted attributes from the library's result dict; its warnings are raised as
        UserWarnings (at the caller of fit) when `warn`."""
        self.cluster_centers_ = r["centroids"]
        self.labels_ = r["labels"]
        self.inertia_ = float(r["inertia"])
        self.n_iter_ = int(r["n_iter"])
        self.sse_history_ = r["sse_history"]
        self.backend_ = r["backend"]
        self.timings_ = dict(r["timings"])
        self.converged_ = bool(r["converged"])
        self.cluster_sizes_ = r["cluster_sizes"]
        self.n_empty_relocated_ = int(r["n_empty_relocated"])
        self.warnings_ = list(r["warnings"])
        for message in self.warnings_ if warn else ():
            warnings.warn(message, UserWarning, stacklevel=4)

    def _on_iteration(self):
        """The per-iteration hook: the verbose line, then the user's callback."""
        verbose, user = self.verbose, self.callback
        if not verbose and user is None:
            return None

        def hook(iteration, sse, shift, seconds):
            if verbose:
                print(
                    "Iteration %d, inertia %.10g, center shift %.6g, %.3f ms"
                    % (iteration, sse, shift, seconds * 1e3),
                    file=sys.stdout,
                    flush=True,
                )
            if user is not None:
                r = user(IterationInfo(iteration, sse, shift, seconds))
                return r is None or bool(r)
            return True

        return hook

    def fit_predict(self, X, y=None, sample_weight=None):
        """fit(X), then the labels of X (labels_)."""
        data = self._fit(X, sample_weight)
        return _arrays.to_output(self.labels_, data.source if data.on_device else None, self.output)

    def fit_transform(self, X, y=None, sample_weight=None):
        """fit(X), then transform(X)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    # ---------------------------------------------------------------- use
    def _check_fitted(self):
        if _sk_check_is_fitted is not None:
            _sk_check_is_fitted(self, "cluster_centers_")
        elif not hasattr(self, "cluster_centers_"):
            raise AttributeError(
                "This KMeans instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _apply(self, X, which, sample_weight=None):
        self._check_fitted()
        data = self._data(X, reset=False)
        centers = np.ascontiguousarray(self.cluster_centers_, dtype=data.dtype)
        c_address = centers.__array_interface__["data"][0]
        k = centers.shape[0]
        backend = self.backend
        metric = self.metric
        if metric not in _METRICS:
            raise ValueError("metric = %r is not one of %s" % (metric, _METRICS))
        suffix = "float32" if data.dtype == np.float32 else "float64"
        try:
            if which == "score":
                w_address, w_size, w_keep = self._weights(sample_weight, data)
                value, _ = getattr(_core, "score_" + suffix)(
                    data.address, data.n, data.d, c_address, k, w_address, w_size, backend, metric
                )
                del w_keep
                return value
            if which == "predict" and self.output == "device" and data.on_device:
                # The labels go straight into a device array like X's (no host round trip).
                out = _arrays.device_labels(data.source, data.n)
                getattr(_core, "predict_device_" + suffix)(
                    data.address, data.n, data.d, c_address, k, backend, metric,
                    _arrays.device_address(out),
                )
                return out
            out, _ = getattr(_core, which + "_" + suffix)(
                data.address, data.n, data.d, c_address, k, backend, metric
            )
        except ValueError as e:
            _raise_from_library(e)
        return _arrays.to_output(out, data.source if data.on_device else None, self.output)

    def predict(self, X):
        """The index of the closest fitted centroid of each sample of X."""
        return self._apply(X, "predict")

    def transform(self, X):
        """The Euclidean distances of X's samples to the fitted centroids (n_samples, k)."""
        return self._apply(X, "transform")

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) inertia of X against the fitted centroids."""
        return float(self._apply(X, "score", sample_weight))


class KMeans(_BaseKMeans):
    """K-means clustering (Lloyd's algorithm) on the GPU (CUDA) or the CPU.

    Parameters follow scikit-learn's ``sklearn.cluster.KMeans`` where it has them:

    n_clusters : int, default 8
    init : {"k-means++", "random", "k-means||"}, array of shape (n_clusters, n_features) or a
        callable ``init(X, n_clusters, random_state) -> array``, default "k-means++"
    n_init : int or "auto", default 1 ("auto": 10 for "random", else 1)
    max_iter : int, default 300
    tol : float, default 1e-4 (relative to the mean feature variance, as scikit-learn)
    random_state : None, int, numpy RandomState or Generator
    algorithm : {"lloyd", "elkan", "auto"}, default "lloyd"; "elkan" prunes distances with
        bounds on the CPU backend (the same labels, centroids and inertia as "lloyd"; the
        other backends run "lloyd" and say so in warnings_), "auto" uses it where measured
        faster (README, "Algorithm")
    metric : {"euclidean", "cosine"}, default "euclidean". "cosine" is spherical k-means: the
        library scales the rows of X (and an init array) to unit norm (a row of zeros raises
        ValueError), cluster_centers_ are unit vectors, inertia_, sse_history_ and score use
        cosine distances 1 - cos (their sum), and transform returns 1 - cos per centroid
    backend : {"auto", "cpu", "cuda", "reference"}; "auto" uses a usable GPU, else the CPU
    n_threads : int or None (None: OpenMP's default)
    verbose : bool or int; prints one line per iteration on stdout
    callback : None or callable(IterationInfo) -> bool; returning False stops the fit
    output : {"numpy", "device"}; "device" returns predict / transform / fit_predict /
        fit_transform results of CUDA input on its device (CuPy or PyTorch), not as NumPy
        (predict's labels are written there directly, without a trip through host memory)

    Fitted attributes: cluster_centers_, labels_, inertia_, n_iter_, n_features_in_
    (feature_names_in_ for named columns), sse_history_ (SSE of each iteration's assignment
    step), backend_ (the engine that ran), timings_ (seconds per phase), converged_,
    cluster_sizes_, n_empty_relocated_, warnings_.

    ``save(path)`` writes the fitted model to the library's model file (JSON, the same file as
    ``kmeans fit --model-out`` and C++ ``KMeans<T>::save``); ``KMeans.load(path)`` reads one.
    """

    def __init__(
        self,
        n_clusters=8,
        *,
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
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.algorithm = algorithm
        self.metric = metric
        self.backend = backend
        self.n_threads = n_threads
        self.verbose = verbose
        self.callback = callback
        self.output = output

    # ---------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Compute the k-means clustering of X (n_samples, n_features)."""
        self._fit(X, sample_weight)
        return self

    def _check_params(self, data):
        if self.algorithm not in ("lloyd", "elkan", "auto"):
            raise ValueError(
                "algorithm = %r is not one of 'lloyd', 'elkan', 'auto'" % (self.algorithm,)
            )
        return super()._check_params(data)

    def _fit(self, X, sample_weight):
        """fit; returns the Data of X."""
        data = self._data(X, reset=True)
        k, init, centroids, n_init, max_iter, tol, threads = self._check_params(data)
        w_address, w_size, w_keep = self._weights(sample_weight, data)
        seed = _seed(self.random_state)
        self._seed_used = seed  # what save() records as the params' seed
        fit = _core.fit_float32 if data.dtype == np.float32 else _core.fit_float64
        c_address = 0 if centroids is None else centroids.__array_interface__["data"][0]
        c_size = 0 if centroids is None else centroids.size
        try:
            r = fit(
                data.address,
                data.n,
                data.d,
                k,
                init,
                c_address,
                c_size,
                n_init,
                max_iter,
                tol,
                seed,
                self.backend,
                threads,
                w_address,
                w_size,
                self._on_iteration(),
                self.metric,
                self.algorithm,
            )
        except ValueError as e:
            _raise_from_library(e)
        del w_keep, centroids
        self._set_result(r)
        return data

    # ---------------------------------------------------------------- model files
    def save(self, path):
        """Write the fitted model to `path`: the library's model file (one JSON document with
        the params, the result and the exact centroids; README, "Model files"). The file is
        written to a temporary beside `path` and renamed over it when complete. labels_ and
        timings_ are not stored."""
        self._check_fitted()
        centers = np.asarray(self.cluster_centers_)
        if centers.dtype not in _arrays._FLOATS:
            raise ValueError(
                "cluster_centers_ has dtype %s; a model file holds float32 or float64"
                % centers.dtype
            )
        init = self.init if isinstance(self.init, str) else "array"
        if self.n_init == "auto":
            n_init = 10 if init == "random" else 1
        else:
            n_init = _check_int("n_init", self.n_init, 1)
        seed = getattr(self, "_seed_used", None)
        if seed is None:  # fitted by a version that did not record it
            seed = self.random_state if isinstance(self.random_state, numbers.Integral) else 0
        info = dict(
            max_iter=_check_int("max_iter", self.max_iter, 0),
            tol=float(self.tol),
            init=init,
            n_init=n_init,
            seed=int(seed),
            backend=self.backend,
            algorithm=self.algorithm if self.algorithm in ("lloyd", "elkan", "auto") else "lloyd",
            n_threads=0 if self.n_threads is None else _check_int("n_threads", self.n_threads, 1),
            metric=self.metric,
            inertia=float(self.inertia_),
            n_iter=int(self.n_iter_),
            converged=bool(getattr(self, "converged_", False)),
            n_empty_relocated=int(getattr(self, "n_empty_relocated_", 0)),
            result_backend=getattr(self, "backend_", "auto"),
            sse_history=[float(v) for v in getattr(self, "sse_history_", ())],
            imbalance_history=[float(v) for v in getattr(self, "imbalance_history_", ())],
            cluster_sizes=[float(v) for v in getattr(self, "cluster_sizes_", ())],
            warnings=[str(w) for w in getattr(self, "warnings_", ())],
        )
        save = _core.save_model_float32 if centers.dtype == np.float32 else _core.save_model_float64
        save(os.fspath(path), centers, info)

    @classmethod
    def load(cls, path):
        """A fitted KMeans read from a model file (written by save, `kmeans fit --model-out` or
        C++ KMeans<T>::save): cluster_centers_ in the file's dtype, n_features_in_, inertia_,
        n_iter_, sse_history_, backend_, converged_, cluster_sizes_, n_empty_relocated_,
        warnings_ and the params. labels_ and timings_ are not stored. A fit that started from
        an init array comes back with init = its fitted centroids (the array is not stored).
        A truncated, foreign or newer-format file raises ValueError naming the problem."""
        m = _core.load_model(os.fspath(path))
        p = m["params"]
        if p["batch_size"] > 0:
            raise ValueError(
                "%s holds a mini-batch model (batch_size = %d): load it with "
                "kmeans.MiniBatchKMeans.load" % (os.fspath(path), p["batch_size"])
            )
        centers = m["centroids"]
        km = cls(
            n_clusters=int(p["k"]),
            init=centers.copy() if p["init"] == "array" else p["init"],
            n_init=int(p["n_init"]),
            max_iter=int(p["max_iter"]),
            tol=float(p["tol"]),
            random_state=int(p["seed"]),
            backend=p["backend"],
            algorithm=p.get("algorithm", "lloyd"),
            n_threads=None if p["n_threads"] == 0 else int(p["n_threads"]),
            metric=p.get("metric", "euclidean"),
        )
        km.cluster_centers_ = centers
        km.n_features_in_ = centers.shape[1]
        km.inertia_ = float(m["inertia"])
        km.n_iter_ = int(m["n_iter"])
        km.sse_history_ = m["sse_history"]
        km.backend_ = m["backend"]
        km.converged_ = bool(m["converged"])
        km.cluster_sizes_ = m["cluster_sizes"]
        km.n_empty_relocated_ = int(m["n_empty_relocated"])
        km.warnings_ = list(m["warnings"])
        km._seed_used = int(p["seed"])
        return km
