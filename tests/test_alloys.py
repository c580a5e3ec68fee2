"""The multi-element periodic alloy set (sciml.datasets.alloys) and splitting by trajectory."""
import numpy as np
import pytest
from ase.calculators.emt import EMT

from sciml.atoms import read_frames, split_by_trajectory, split_frames
from sciml.datasets import ALLOY_ELEMENTS, alloy_trajectory_specs, generate_alloys, load_alloys, load_pes, regenerate_bundled


def test_bundled_subset_matches_the_recipe_and_card():
    frames = load_alloys()
    assert len(frames) == 200
    assert {f.info["trajectory"] for f in frames} == set(range(10))
    for f in frames:
        assert f.pbc.all() and 31 <= len(f) <= 108
        assert set(f.get_chemical_symbols()) <= set(ALLOY_ELEMENTS)
        assert f.info["kind"] in ("bulk", "vacancy", "slab") and 300 <= f.info["temperature_K"] <= 1500
    by_traj = {}
    for f in frames:
        by_traj.setdefault(f.info["trajectory"], set()).update(f.get_chemical_symbols())
    assert all(4 <= len(s) <= 6 for s in by_traj.values())            # 4-6 species per cell
    assert len(set().union(*by_traj.values())) >= 6
    assert {f.info["kind"] for f in frames} == {"bulk", "vacancy", "slab"}
    # labels are EMT's, stress included (recompute one strained frame)
    a = frames[37].copy()
    a.calc = EMT()
    assert a.get_potential_energy() == pytest.approx(frames[37].get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(a.get_forces(), frames[37].get_forces(), atol=1e-6)
    np.testing.assert_allclose(a.get_stress(), frames[37].get_stress(), atol=1e-8)
    strains = np.array([f.get_volume() for f in frames if f.info["trajectory"] == 3])
    assert strains.std() > 0                                           # cells are strained frame by frame


def test_generation_is_deterministic_and_a_prefix_of_larger_sets(tmp_path):
    small = generate_alloys(tmp_path / "a" / "x.extxyz", n_trajectories=2, frames_per_trajectory=3,
                            equilibration_steps=5, stride=2, progress=False)
    bigger = generate_alloys(tmp_path / "b" / "x.extxyz", n_trajectories=3, frames_per_trajectory=3,
                             equilibration_steps=5, stride=2, progress=False)
    assert len(small) == 6 and len(bigger) == 9
    for p, q in zip(small, bigger[:6]):
        assert p.get_chemical_symbols() == q.get_chemical_symbols()
        np.testing.assert_array_equal(p.positions, q.positions)
        assert p.get_potential_energy() == q.get_potential_energy()
    # the bundled subset is the first trajectory of the full recipe (spot-check its start cell)
    spec = alloy_trajectory_specs(1, seed=0)[0]
    bundled0 = [f for f in load_alloys() if f.info["trajectory"] == 0]
    assert spec["atoms"].get_chemical_symbols() == bundled0[0].get_chemical_symbols()
    assert spec["kind"] == bundled0[0].info["kind"]


def test_interrupted_generation_resumes_with_identical_frames(tmp_path):
    kw = dict(frames_per_trajectory=2, equilibration_steps=3, stride=2, progress=False, checkpoint_every=1)
    ref = generate_alloys(tmp_path / "ref" / "x.extxyz", n_trajectories=3, **kw)
    out = tmp_path / "run" / "x.extxyz"
    generate_alloys(out, n_trajectories=3, **kw)
    # simulate a crash after trajectory 1: keep trajectories 0-1 plus half of trajectory 2
    from sciml.atoms import write_frames

    write_frames(out, ref[:5])
    resumed = generate_alloys(out, n_trajectories=3, **kw)
    assert len(resumed) == 6
    assert [f.info["trajectory"] for f in resumed] == [0, 0, 1, 1, 2, 2]
    for p, q in zip(resumed, ref):
        np.testing.assert_allclose(p.positions, q.positions, atol=1e-7)     # read back: 8 decimals
        assert p.get_potential_energy() == pytest.approx(q.get_potential_energy(), abs=1e-6)
    assert len(read_frames(out, require=("energy", "forces", "stress"))) == 6


def test_bad_recipe_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown recipe arguments \\['n_frames'\\]"):
        generate_alloys(tmp_path / "x.extxyz", n_frames=10)
    with pytest.raises(ValueError, match="n_trajectories must be a positive integer"):
        alloy_trajectory_specs(0)
    with pytest.raises(ValueError, match="which must be 'bundled' or 'full'"):
        load_alloys("huge")


def test_split_by_trajectory_keeps_trajectories_whole():
    frames = load_alloys()
    train, valid, test = split_by_trajectory(frames, 100, 20, seed=0)
    assert len(train) + len(valid) + len(test) == len(frames)
    assert len(train) >= 100 and len(valid) >= 20
    t = [{f.info["trajectory"] for f in part} for part in (train, valid, test)]
    assert not (t[0] & t[1]) and not (t[0] & t[2]) and not (t[1] & t[2])
    again = split_by_trajectory(frames, 100, 20, seed=0)
    assert [id(f) for f in again[0]] == [id(f) for f in train]
    other = split_by_trajectory(frames, 100, 20, seed=1)
    assert {f.info["trajectory"] for f in other[0]} != t[0]
    with pytest.raises(ValueError, match="has no info\\['trajectory'\\]"):
        split_by_trajectory(load_pes("cu_emt_300K"), 10, 5)
    with pytest.raises(ValueError, match="only 200 frames"):
        split_by_trajectory(frames, 190, 20)


def test_bundled_cu_set_regenerates_exactly(tmp_path):
    frames = regenerate_bundled("cu_emt_300K", tmp_path, n_frames=5, progress=False)
    bundled = load_pes("cu_emt_300K")[:5]
    for p, q in zip(frames, bundled):
        np.testing.assert_allclose(p.positions, q.positions, atol=1e-7)   # extxyz keeps 8 decimals
        np.testing.assert_allclose(p.get_stress(), q.get_stress(), atol=1e-8)
