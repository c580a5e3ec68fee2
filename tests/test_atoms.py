import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from sciml.atoms import attach_labels, frame_labels, read_frames, split_frames, validate_frames, write_frames


def _labelled(atoms):
    a = atoms.copy()
    a.calc = EMT()
    s = a.get_stress() if a.pbc.any() else None
    return attach_labels(a, a.get_potential_energy(), a.get_forces(), s)


@pytest.fixture
def frames():
    rng = np.random.default_rng(1)
    out = []
    for _ in range(6):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.05, seed=int(rng.integers(1000)))
        out.append(_labelled(a))
    return out


@pytest.mark.parametrize("suffix", [".extxyz", ".db"])
def test_roundtrip_keeps_labels(tmp_path, frames, suffix):
    path = write_frames(tmp_path / f"f{suffix}", frames)
    back = read_frames(path, require=("energy", "forces", "stress"))
    assert len(back) == len(frames)
    for a, b in zip(frames, back):
        la, lb = frame_labels(a), frame_labels(b)
        assert la["energy"] == pytest.approx(lb["energy"], abs=1e-6)
        np.testing.assert_allclose(la["forces"], lb["forces"], atol=1e-6)
        np.testing.assert_allclose(la["stress"], lb["stress"], atol=1e-6)
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)
        np.testing.assert_allclose(a.cell.array, b.cell.array, atol=1e-6)


def test_write_is_atomic_and_keeps_old_file_on_failure(tmp_path, frames):
    path = write_frames(tmp_path / "f.extxyz", frames)
    before = path.read_bytes()

    class Boom(Atoms):
        def copy(self):  # ase.io.write copies atoms; fail halfway through writing
            raise RuntimeError("disk on fire")

    bad = frames[:2] + [Boom("H")]
    with pytest.raises(Exception):
        write_frames(path, bad)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_append(tmp_path, frames):
    p = write_frames(tmp_path / "f.extxyz", frames[:2])
    write_frames(p, frames[2:], append=True)
    assert len(read_frames(p)) == len(frames)


def test_split_is_deterministic_and_disjoint(frames):
    idx = list(range(100))
    items = [Atoms("H", positions=[[i, 0, 0]]) for i in idx]
    tr, va, te = split_frames(items, 60, 20, seed=3)
    tr2, va2, te2 = split_frames(items, 60, 20, seed=3)
    key = lambda fs: [int(a.positions[0, 0]) for a in fs]  # noqa: E731
    assert key(tr) == key(tr2) and key(va) == key(va2) and key(te) == key(te2)
    assert (len(tr), len(va), len(te)) == (60, 20, 20)
    assert sorted(key(tr) + key(va) + key(te)) == idx
    assert key(split_frames(items, 60, 20, seed=4)[0]) != key(tr)
    _, _, te3 = split_frames(items, 60, 20, n_test=5, seed=3)
    assert key(te3) == key(te)[:5]
    with pytest.raises(ValueError, match="only 100 are available"):
        split_frames(items, 90, 20)


def test_validate_names_bad_frames(frames):
    good = frames[0]
    nan = good.copy()
    nan.positions[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"frame 1: non-finite .*positions .*\[2\]"):
        validate_frames([good, nan], require=())

    no_e = good.copy()
    with pytest.raises(ValueError, match="frame 0: missing energy"):
        validate_frames([no_e])

    bad_f = attach_labels(good, 1.0, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"frame 0: forces have shape \(3, 3\), expected \(4, 3\)"):
        validate_frames([bad_f])

    nan_f = attach_labels(good, 1.0, np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="non-finite .*forces"):
        validate_frames([nan_f])

    with pytest.raises(ValueError, match=r"element\(s\) \['Cu'\] not among the model's species \['H', 'O'\]"):
        validate_frames([good], species=["H", "O"])

    with pytest.raises(ValueError, match="empty structure"):
        validate_frames([Atoms()], require=())

    clash = molecule("H2O")
    clash.positions[1] = clash.positions[0] + 1e-3
    with pytest.raises(ValueError, match="atoms 0 and 1 are .* overlapping"):
        validate_frames([clash], require=())

    with pytest.raises(TypeError, match="expected ase.Atoms"):
        validate_frames(["not atoms"], require=())


def test_periodic_overlap_through_boundary():
    a = Atoms("Cu2", positions=[[0.01, 0, 0], [3.59, 0, 0]], cell=[3.6, 3.6, 3.6], pbc=True)
    with pytest.raises(ValueError, match="overlapping"):
        validate_frames([a], require=())


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.extxyz"):
        read_frames(tmp_path / "nope.extxyz")
