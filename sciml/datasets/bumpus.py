"""Bumpus's 1898 house-sparrow survival data (136 birds), bundled with a dataset card."""
from __future__ import annotations

from .bundled import dataset_path

__all__ = ["load_bumpus", "BUMPUS_TRAITS"]

_BUMPUS_COLUMNS = {
    "BumpusNumber": "bumpus_number",
    "sex": "sex",
    "age": "age",
    "survival": "survival",
    "total_length_mm": "total_length_mm",
    "alar.extent_mm": "alar_extent_mm",
    "weight_g": "weight_g",
    "length_beak_and_head_mm_": "length_beak_and_head_mm",
    "length_humerus_in": "length_humerus_in",
    "length_femur_in": "length_femur_in",
    "length_tibiotarsus_in": "length_tibiotarsus_in",
    "skull_width_in": "skull_width_in",
    "keel_length_in": "keel_length_in",
}

BUMPUS_TRAITS = [
    "total_length_mm",
    "alar_extent_mm",
    "weight_g",
    "length_beak_and_head_mm",
    "length_humerus_in",
    "length_femur_in",
    "length_tibiotarsus_in",
    "skull_width_in",
    "keel_length_in",
]


def load_bumpus() -> "pandas.DataFrame":  # noqa: F821
    """Bumpus's 1898 house-sparrow data: 136 birds, 72 survived.

    Columns (snake_case): ``bumpus_number`` (int; Bumpus's specimen number,
    repeats across groups), ``sex`` (category ``m``/``f``), ``age`` (category
    ``a`` adult / ``y`` young; missing for females), ``survival`` (``yes``/``no``,
    as in the source), ``survived`` (int 0/1), and the nine measurements in
    :data:`BUMPUS_TRAITS` (mm, g, and inches as in the source).

    Example
    -------
    >>> from sciml.datasets import load_bumpus
    >>> df = load_bumpus()
    >>> len(df), int(df.survived.sum())
    (136, 72)
    """
    import pandas as pd

    df = pd.read_csv(dataset_path("bumpus") / "bumpus.csv")
    missing = set(_BUMPUS_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"bundled bumpus.csv lacks columns {sorted(missing)}")
    df = df.rename(columns=_BUMPUS_COLUMNS)[list(_BUMPUS_COLUMNS.values())]
    df["bumpus_number"] = df["bumpus_number"].astype("int64")
    df["sex"] = pd.Categorical(df["sex"], categories=["m", "f"])
    df["age"] = pd.Categorical(df["age"], categories=["a", "y"])
    df["survival"] = df["survival"].astype(str)
    bad = set(df["survival"]) - {"yes", "no"}
    if bad:
        raise ValueError(f"bundled bumpus.csv: unexpected survival values {sorted(bad)}")
    df.insert(4, "survived", (df["survival"] == "yes").astype("int64"))
    for col in BUMPUS_TRAITS:
        df[col] = df[col].astype("float64")
    return df
