"""statsmodels' names for a result's estimates (``params``, ``bse``, ``pvalues``), read off its tidy table."""

from __future__ import annotations

import pandas as pd


class TidyResultVocabulary:
    """Mixin for result classes with a tidy ``table()`` (columns ``type, term, estimate, se, p_value``).

    ``params``, ``bse`` and ``pvalues`` are Series indexed by ``(type, term)`` as in the table, so a
    user who knows statsmodels' results finds the same names here. ``conf_int`` stays with each class
    (it depends on how the intervals were made).
    """

    def _indexed(self) -> pd.DataFrame:
        return self.table().set_index(["type", "term"])

    @property
    def params(self) -> pd.Series:
        """Every estimate, indexed by ``(type, term)`` as in :meth:`table`."""
        return self._indexed()["estimate"].rename("params")

    @property
    def bse(self) -> pd.Series:
        """Standard errors aligned with :attr:`params`."""
        return self._indexed()["se"].rename("bse")

    @property
    def pvalues(self) -> pd.Series:
        """p-values aligned with :attr:`params` (NaN where none is defined)."""
        return self._indexed()["p_value"].rename("pvalues")
