"""Reference calculators by name (GFN2-xTB through tblite, ASE's EMT and Lennard-Jones)."""
from __future__ import annotations

from typing import Any

__all__ = ["make_calculator", "calculator_description"]


def make_calculator(spec: str | Any | None, atoms: "Atoms") -> Any:  # noqa: F821
    """Build an ASE calculator from a name (``"gfn2-xtb"``, ``"gfn1-xtb"``, ``"emt"``,
    ``"lj"``), an instance (returned as is) or ``None`` (GFN2-xTB for molecules,
    EMT for periodic cells)."""
    if spec is None:
        spec = "emt" if atoms.pbc.any() else "gfn2-xtb"
    if not isinstance(spec, str):
        return spec
    key = spec.lower()
    if key in ("gfn2-xtb", "gfn1-xtb", "ipea1-xtb", "tblite"):
        from tblite.ase import TBLite

        method = "GFN2-xTB" if key == "tblite" else key.upper().replace("XTB", "xTB")
        return TBLite(method=method, verbosity=0)
    if key == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if key == "lj":
        from ase.calculators.lj import LennardJones

        return LennardJones()
    raise ValueError(f"unknown calculator {spec!r}; use 'gfn2-xtb', 'gfn1-xtb', 'emt', 'lj' or an ASE calculator")


def calculator_description(calc: Any) -> dict:
    name = type(calc).__name__
    desc: dict[str, Any] = {"class": f"{type(calc).__module__}.{name}"}
    params = getattr(calc, "parameters", None)
    if params:
        desc["parameters"] = {k: v for k, v in dict(params).items() if isinstance(v, (str, int, float, bool))}
    mod = type(calc).__module__.split(".")[0]
    try:
        from importlib.metadata import version

        desc["package_version"] = version(mod)
    except Exception:  # noqa: BLE001 - version is informational only
        desc["package_version"] = None
    return desc
