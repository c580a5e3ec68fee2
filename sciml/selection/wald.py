"""Wald inference shared by the likelihood fits (GLM, GLMM, REML mixed model): z statistics and intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats


class WaldInference:
    """Mixin for fits with ``params``, ``bse`` and ``nobs``: ``tvalues``, ``df_resid`` and normal intervals."""

    @property
    def tvalues(self) -> np.ndarray:
        """Wald statistics ``params / bse``."""
        return self.params / self.bse

    @property
    def df_resid(self) -> int:
        return self.nobs - len(self.params)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(q, 2)`` Wald (normal) intervals at level ``1 - alpha``."""
        z = stats.norm.ppf(1 - alpha / 2)
        return np.column_stack([self.params - z * self.bse, self.params + z * self.bse])


class NormalWaldInference(WaldInference):
    """:class:`WaldInference` plus two-sided normal p-values of the Wald statistics."""

    @property
    def pvalues(self) -> np.ndarray:
        return 2 * stats.norm.sf(np.abs(self.tvalues))
