# SPDX-License-Identifier: Apache-2.0
"""get_params / set_params / repr in scikit-learn's manner, for when scikit-learn is absent."""

import inspect


class BaseEstimator:
    """The part of sklearn.base.BaseEstimator that kmeans.KMeans relies on."""

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD
        )

    def get_params(self, deep=True):
        """The constructor's parameters and their current values."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Sets constructor parameters; unknown names raise ValueError."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    "Invalid parameter %r for estimator %s. Valid parameters are: "
                    "%s." % (name, type(self).__name__, valid)
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = [
            "%s=%r" % (k, v)
            for k, v in self.get_params().items()
            if not (defaults.get(k) is v or _equal(defaults.get(k), v))
        ]
        return "%s(%s)" % (type(self).__name__, ", ".join(changed))


def _equal(a, b):
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and odd objects: treat as changed
        return False
