"""Validated options shared by every route of a selection analysis (one place that checks them)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class AnalysisOptions:
    """Inference settings of :func:`~sciml.selection.lande_arnold` (validated by :meth:`check`).

    ``quadratic``: ``None`` fits gamma when the data allow it (else warns and reports beta only),
    ``True`` requires it (an error when it cannot be fitted), ``False`` skips it.
    """

    bootstrap: int = 0
    permutations: int = 0
    seed: int | None = None
    quadratic: bool | None = None
    ci_method: str = "bca"
    level: float = 0.95
    count_model: str = "auto"
    vif_threshold: float = 10.0
    progress: bool = True

    def check(self) -> "AnalysisOptions":
        """Raise ``ValueError`` naming the option that is out of range; return ``self``."""
        if self.ci_method not in ("bca", "percentile"):
            raise ValueError(f"ci_method must be 'bca' or 'percentile', got {self.ci_method!r}")
        for name in ("bootstrap", "permutations"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {val!r}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level!r}")
        if self.quadratic not in (None, True, False):
            raise ValueError(f"quadratic must be None (fit gamma when the data allow it), True or False, "
                             f"got {self.quadratic!r}")
        if self.count_model not in ("auto", "poisson", "negbin"):
            raise ValueError(f"count_model must be 'auto', 'poisson' or 'negbin', got {self.count_model!r}")
        return replace(self, bootstrap=int(self.bootstrap), permutations=int(self.permutations))

    def t_quantile(self, df: float) -> float:
        """Two-sided t quantile for intervals at ``level`` (normal when ``df`` is infinite)."""
        return float(stats.t.ppf(0.5 + self.level / 2, df)) if np.isfinite(df) else self.z_quantile()

    def z_quantile(self) -> float:
        return float(stats.norm.ppf(0.5 + self.level / 2))

    @property
    def ci_label(self) -> str:
        return f"bootstrap {'BCa' if self.ci_method == 'bca' else 'percentile'}"
