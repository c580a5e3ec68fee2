import json

import numpy as np
import pytest
from ase.build import bulk, molecule

from sciml.atoms import read_frames, split_frames
from sciml.datasets import dataset_card, generate_pes, list_datasets, load_bumpus, load_pes


def test_bumpus_counts_match_card():
    df = load_bumpus()
    assert len(df) == 136
    assert int(df.survived.sum()) == 72
    males, females = df[df.sex == "m"], df[df.sex == "f"]
    assert len(males) == 87 and len(females) == 49
    assert (males.age == "a").sum() == 59 and (males.age == "y").sum() == 28
    assert int(males.survived.sum()) == 51 and int(females.survived.sum()) == 21
    assert females.age.isna().all()
    assert df.weight_g.dtype == np.float64
    assert set(df.survival) == {"yes", "no"}
    # values untouched: first row of the source file
    assert df.iloc[0][["total_length_mm", "alar_extent_mm", "weight_g", "keel_length_in"]].tolist() == [154, 241, 24.5, 0.83]


def test_bundled_pes_sets():
    assert {"bumpus", "ethanol_gfn2_500K", "cu_emt_300K"} <= set(list_datasets())
    eth = load_pes("ethanol_gfn2_500K")
    assert len(eth) == 1500 and len(eth[0]) == 9
    card = dataset_card("ethanol_gfn2_500K")
    assert card["calculator"]["parameters"]["method"] == "GFN2-xTB"
    assert card["sampling"]["temperature_K"] == 500.0
    tr, va, te = split_frames(eth, 1000, 100, seed=0)
    assert (len(tr), len(va), len(te)) == (1000, 100, 400)
    cu = load_pes("cu_emt_300K")
    assert all(a.pbc.all() for a in cu)
    stresses = np.array([a.get_stress() for a in cu])
    assert stresses.std(axis=0).min() > 1e-4  # strained cells: stress varies
    with pytest.raises(ValueError, match="unknown data set 'nope'"):
        load_pes("nope")


def test_generate_pes_molecule_with_tblite(tmp_path):
    out = tmp_path / "eth" / "eth.extxyz"
    frames = generate_pes(molecule("CH3CH2OH"), out, n_frames=4, stride=2, equilibration_steps=2, seed=1, progress=False)
    back = read_frames(out)
    assert len(back) == 4
    card = json.loads((out.parent / "card.json").read_text())
    assert card["calculator"]["class"] == "tblite.ase.TBLite"
    assert card["sampling"]["stride"] == 2 and card["sampling"]["seed"] == 1
    assert card["wall_time_s"] >= 0 and (out.parent / "README.md").exists()
    # labels are the calculator's: recompute one frame
    from tblite.ase import TBLite

    a = back[2].copy()
    a.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert a.get_potential_energy() == pytest.approx(frames[2].get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(a.get_forces(), back[2].get_forces(), atol=2e-4)  # extxyz stores 8 decimals


def test_generate_pes_periodic_emt_is_seeded(tmp_path):
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    f1 = generate_pes(cu, tmp_path / "a" / "cu.extxyz", n_frames=3, stride=2, equilibration_steps=1, cell_strain=0.02, seed=5, progress=False)
    f2 = generate_pes(cu, tmp_path / "b" / "cu.extxyz", n_frames=3, stride=2, equilibration_steps=1, cell_strain=0.02, seed=5, progress=False)
    for a, b in zip(f1, f2):
        np.testing.assert_allclose(a.positions, b.positions)
        np.testing.assert_allclose(a.get_stress(), b.get_stress())
    assert not np.allclose(f1[0].cell.array, cu.cell.array)  # strained
    back = read_frames(tmp_path / "a" / "cu.extxyz", require=("energy", "forces", "stress"))
    assert len(back) == 3


def test_generate_pes_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_frames must be a positive integer"):
        generate_pes(molecule("H2O"), tmp_path / "x.extxyz", n_frames=0)
    with pytest.raises(ValueError, match="cell_strain needs a periodic"):
        generate_pes(molecule("H2O"), tmp_path / "x.extxyz", cell_strain=0.01)
    bad = molecule("H2O")
    bad.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        generate_pes(bad, tmp_path / "x.extxyz", n_frames=1)
    with pytest.raises(ValueError, match="unknown calculator 'dft'"):
        generate_pes(molecule("H2O"), tmp_path / "x.extxyz", n_frames=1, calculator="dft")
