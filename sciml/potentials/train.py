"""Training: loss on energies per atom, forces (and stress), AdamW/Adam, LR schedule, EMA,
early stopping, atomic resumable checkpoints, wall-clock budget, metrics CSV, and
data-parallel training (torchrun / srun, gloo on CPU, NCCL on GPU).

Loss of a (global) batch, in eV units:

``L = w_E * mean_b((E_b - E*_b)/N_b)^2 + w_F * mean_{atoms, xyz}(F - F*)^2 + w_S * mean_{stress}(sigma - sigma*)^2``

Files written next to ``out`` (``model.pt``): ``model.ckpt`` (checkpoint, every
``checkpoint_every`` steps and at the end, atomic), ``model.metrics.csv`` (one row per
validation), and ``out`` itself (the EMA weights with the best validation loss, updated
whenever validation improves). Re-running the same command resumes from ``model.ckpt``.

Data parallel: when ``WORLD_SIZE`` (torchrun) or ``SLURM_NTASKS`` (srun) is > 1 every process
takes a strided share of each global batch; gradients are all-reduced (summed with the
global normalisation, so the update equals single-process training with the same global
batch); only rank 0 writes files.
"""
from __future__ import annotations

import copy
import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..metrics import ErrorAccumulator, metrics_from_sums
from .forces import compute_properties
from .graph import AtomicGraph, collate, frames_to_graphs
from .model import _DTYPES, FILE_FORMAT_VERSION, EquivariantPotential, ModelConfig, save_model

CHECKPOINT_FORMAT = "sciml-checkpoint"


@dataclass
class TrainConfig:
    """Training settings (YAML keys of ``--config`` must match these fields; ``model`` holds
    :class:`~sciml.potentials.model.ModelConfig` fields except ``species``).

    Defaults are tuned for small molecular data sets (~1000 frames) on a CPU.
    """

    model: dict = field(default_factory=dict)
    batch_size: int = 5
    lr: float = 0.01
    optimizer: str = "adam"  # adam | adamw
    weight_decay: float = 0.0
    scheduler: str = "plateau"  # plateau | cosine | none
    plateau_factor: float = 0.5
    plateau_patience: int = 5  # validations without improvement before the LR drops
    min_lr: float = 1e-5
    max_epochs: int = 1000
    max_steps: Optional[int] = None
    max_time: Optional[float] = None  # seconds of wall-clock for this invocation
    energy_weight: float = 1.0
    forces_weight: float = 100.0
    stress_weight: float = 10.0
    ema_decay: float = 0.99
    early_stopping_patience: int = 30  # validations without improvement
    valid_every: int = 1  # epochs
    valid_max_steps: Optional[int] = None  # also validate every N steps (useful for large sets)
    checkpoint_every: int = 100  # steps
    seed: int = 0
    dtype: str = "float64"
    device: Optional[str] = None
    progress: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config key(s) {unknown}; known keys: {sorted(known)}")
        cfg = cls(**d)
        return cfg.validate()

    @classmethod
    def from_yaml(cls, path) -> "TrainConfig":
        import yaml

        with open(path) as fh:
            d = yaml.safe_load(fh) or {}
        if not isinstance(d, dict):
            raise ValueError(f"config file {str(path)!r} must contain a mapping of keys to values")
        return cls.from_dict(d)

    def validate(self) -> "TrainConfig":
        mknown = {f.name for f in fields(ModelConfig)} - {"species"}
        bad = sorted(set(self.model) - mknown)
        if bad:
            raise ValueError(f"unknown model config key(s) {bad}; known keys: {sorted(mknown)}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.scheduler not in ("plateau", "cosine", "none"):
            raise ValueError(f"scheduler must be 'plateau', 'cosine' or 'none', got {self.scheduler!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        for name in ("batch_size", "max_epochs", "checkpoint_every", "valid_every", "early_stopping_patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max_time must be positive seconds, got {self.max_time!r}")
        return self


# --------------------------------------------------------------------------- statistics


def fit_statistics(model: EquivariantPotential, graphs: Sequence[AtomicGraph]) -> dict:
    """Set per-element reference energies (least squares), scale, shift and average neighbour count.

    ``E0`` solves ``min ||A E0 - E||`` where ``A[b, s]`` counts atoms of species ``s`` in
    structure ``b`` (minimum-norm solution when the compositions do not determine all E0);
    ``shift`` is the mean remaining energy per atom; ``scale`` the RMS force component.
    """
    S = len(model.species)
    A = np.zeros((len(graphs), S))
    E = np.zeros(len(graphs))
    f2, nf, nedge, natom = 0.0, 0, 0, 0
    for b, g in enumerate(graphs):
        A[b] = np.bincount(g.species.numpy(), minlength=S)
        E[b] = float(g.energy[0])
        f2 += float((g.forces.double() ** 2).sum())
        nf += g.forces.numel()
        nedge += g.edge_index.shape[1]
        natom += g.positions.shape[0]
    e0, *_ = np.linalg.lstsq(A, E, rcond=None)
    resid = (E - A @ e0) / A.sum(1)
    shift = float(resid.mean())
    scale = math.sqrt(f2 / max(nf, 1)) if f2 > 0 else float(np.std(resid) or 1.0)
    avg_nn = max(nedge / max(natom, 1), 1.0)
    with torch.no_grad():
        model.atomic_energies.copy_(torch.as_tensor(e0, dtype=model.atomic_energies.dtype))
        model.shift.fill_(shift)
        model.scale.fill_(scale)
        model.avg_num_neighbors.fill_(avg_nn)
    return {"atomic_energies": e0.tolist(), "shift": shift, "scale": scale, "avg_num_neighbors": avg_nn}


# --------------------------------------------------------------------------- distributed


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join a process group when launched by ``torchrun`` or ``srun`` (otherwise single process).

    torchrun sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT. Under srun we read
    SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID; MASTER_ADDR must be set (e.g. in the sbatch script:
    ``export MASTER_ADDR=$(scontrol show hostnames $SLURM_NODELIST | head -n1)``), MASTER_PORT
    defaults to 29500. Backend: gloo on CPU, NCCL on CUDA.
    """
    import torch.distributed as dist

    env = os.environ
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(env.get("LOCAL_RANK", 0)), False)
    if int(env.get("WORLD_SIZE", "1")) > 1:
        rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    elif int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env and "SLURM_STEP_ID" in env:
        rank, world, local = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0))
        if "MASTER_ADDR" not in env:
            addr = env.get("SLURM_LAUNCH_NODE_IPADDR")
            if not addr:
                raise ValueError("srun launch: set MASTER_ADDR to the first node's address")
            os.environ["MASTER_ADDR"] = addr
        os.environ.setdefault("MASTER_PORT", "29500")
        os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    else:
        return DistInfo()
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank, world, local, True)


def _all_reduce_(t: torch.Tensor, dist_info: DistInfo) -> torch.Tensor:
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


# --------------------------------------------------------------------------- evaluation


def predict_graphs(
    model: EquivariantPotential, graphs: Sequence[AtomicGraph], batch_size: int = 16, stress: bool = False
) -> list[dict[str, np.ndarray]]:
    """Predictions (energy, forces, optional stress) for each graph, as numpy arrays."""
    p = next(model.parameters())
    out = []
    for k in range(0, len(graphs), batch_size):
        chunk = list(graphs[k : k + batch_size])
        g = collate(chunk).to(p.device, p.dtype)
        want_stress = stress and bool(g.pbc.all(dim=1).any())
        res = compute_properties(model, g, forces=True, stress=want_stress)
        offs = np.cumsum([0] + [int(c.n_atoms[0]) for c in chunk])
        for b in range(len(chunk)):
            d = {
                "energy": float(res["energy"][b].detach()),
                "forces": res["forces"][offs[b] : offs[b + 1]].detach().cpu().numpy(),
            }
            if want_stress:
                d["stress"] = res["stress"][b].detach().cpu().numpy()
            out.append(d)
    return out


def _error_sums(model, graphs, dist_info: DistInfo, batch_size: int, weights) -> dict:
    """Sums of errors on this rank's share of ``graphs``, all-reduced."""
    mine = [g for k, g in enumerate(graphs) if k % dist_info.world == dist_info.rank]
    p = next(model.parameters())
    sums = ErrorAccumulator()
    for k in range(0, len(mine), batch_size):
        g = collate(mine[k : k + batch_size]).to(p.device, p.dtype)
        want_stress = bool(g.has_stress.any())
        res = compute_properties(model, g, forces=True, stress=want_stress)
        dE = (res["energy"].detach() - g.energy).double().cpu().numpy()
        dF = (res["forces"].detach() - g.forces).double().cpu().numpy()
        dS = None
        if want_stress:
            m = g.has_stress.cpu()
            dS = (res["stress"].detach().double().cpu() - g.stress.double().cpu())[m].numpy()
        sums.add(dE, g.n_atoms.cpu().numpy(), dF, dS)
    acc = torch.from_numpy(sums.sums.copy())
    _all_reduce_(acc, dist_info)
    return acc


def _metrics_from_sums(acc: torch.Tensor, weights: tuple[float, float, float]) -> dict:
    """Metrics (:func:`sciml.metrics.metrics_from_sums`; the sums are in its order) plus the loss."""
    a = acc.tolist()
    m = metrics_from_sums(a)
    ns = max(a[0], 1)
    loss = weights[0] * a[5] / ns + weights[1] * a[7] / max(a[8], 1)
    if a[11] > 0:
        loss += weights[2] * a[10] / a[11]
    m["loss"] = loss
    return m


def evaluate(model: EquivariantPotential, frames: Sequence, batch_size: int = 16) -> dict:
    """Error metrics of ``model`` on labelled ``frames`` (meV, meV/atom, meV/Å; stress GPa).

    Keys follow :mod:`sciml.metrics` (``energy_mae_meV``, ``forces_mae_meV_per_A``, ``stress_mae_GPa``, ...).

    Example
    -------
    >>> evaluate(load_model("model.pt"), read_frames("test.extxyz"))["forces_mae_meV_per_A"]  # doctest: +SKIP
    """
    graphs = frames_to_graphs(frames, model.cutoff, model.species, labels=True, dtype=model.dtype)
    acc = _error_sums(model, graphs, DistInfo(), batch_size, (1.0, 1.0, 1.0))
    m = _metrics_from_sums(acc, (1.0, 1.0, 1.0))
    m.pop("loss")
    return m


# --------------------------------------------------------------------------- training


class _EMA:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for pe, p in zip(self.model.parameters(), model.parameters()):
            pe.mul_(d).add_(p.detach(), alpha=1.0 - d)


def _batch_loss(model, graphs: list[AtomicGraph], counts: tuple, weights, device, dtype):
    """Loss contribution of this rank's share, normalised by global counts."""
    n_struct, n_force, n_stress = counts
    g = collate(graphs).to(device, dtype)
    want_stress = bool(g.has_stress.any()) and weights[2] > 0
    res = compute_properties(model, g, forces=True, stress=want_stress, create_graph=True)
    dE = (res["energy"] - g.energy) / g.n_atoms.to(dtype)
    loss = weights[0] * (dE**2).sum() / n_struct
    loss = loss + weights[1] * ((res["forces"] - g.forces) ** 2).sum() / n_force
    if want_stress and n_stress > 0:
        m = g.has_stress
        loss = loss + weights[2] * ((res["stress"][m] - g.stress[m]) ** 2).sum() / n_stress
    return loss


@dataclass
class TrainResult:
    """What :func:`train_potential` returns."""

    model_path: Optional[Path]
    model: EquivariantPotential
    history: list
    best_valid: dict
    steps: int
    epochs: int
    stop_reason: str
    wall_time_s: float
    statistics: dict

    def to_dict(self) -> dict:
        return {
            "model_path": str(self.model_path) if self.model_path else None,
            "best_valid": self.best_valid,
            "steps": self.steps,
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "wall_time_s": self.wall_time_s,
            "num_parameters": self.model.num_parameters(),
            "statistics": self.statistics,
        }


def _paths(out: Optional[Path]) -> tuple[Optional[Path], Optional[Path]]:
    if out is None:
        return None, None
    out = Path(out)
    return out.with_name(out.stem + ".ckpt"), out.with_name(out.stem + ".metrics.csv")


def _write_csv(path: Path, rows: list[dict]) -> None:
    from .._io import atomic_write_text

    if not rows:
        return
    cols = list(rows[0].keys())
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def train_potential(
    train_frames: Sequence,
    valid_frames: Sequence,
    out: Optional[str | Path] = None,
    config: Optional[TrainConfig] = None,
    resume: bool = True,
    callback: Optional[Callable[[dict], None]] = None,
) -> TrainResult:
    """Train an :class:`EquivariantPotential` on labelled ``ase.Atoms`` frames.

    ``out`` is the model file (best EMA weights); its ``.ckpt`` and ``.metrics.csv`` siblings are
    written too. With ``resume=True`` an existing checkpoint for the same data and settings is
    continued. ``callback(info)`` is called after each optimisation step (``info`` holds
    ``step``, ``epoch``, ``loss``); it may raise to interrupt.

    Example
    -------
    >>> from sciml.potentials import train_potential, TrainConfig
    >>> res = train_potential(train, valid, "model.pt", TrainConfig(max_time=600))  # doctest: +SKIP
    >>> res.best_valid["forces_mae_meV_per_A"]  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from .._io import atomic_torch_save
    from .._runtime import quiet_progress, resolve_device, seed_everything

    cfg = (config or TrainConfig()).validate()
    if len(train_frames) == 0:
        raise ValueError("train_frames is empty")
    if len(valid_frames) == 0:
        raise ValueError("valid_frames is empty: training needs a validation set for EMA selection/early stopping")
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    dist_info = init_distributed(device.type)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    dtype = _DTYPES[cfg.dtype]
    seed_everything(cfg.seed)

    species = sorted({int(z) for a in list(train_frames) + list(valid_frames) for z in a.numbers})
    mcfg = ModelConfig(species=species, **cfg.model).validate()
    train_graphs = frames_to_graphs(train_frames, mcfg.cutoff, species, labels=True, dtype=dtype)
    valid_graphs = frames_to_graphs(valid_frames, mcfg.cutoff, species, labels=True, dtype=dtype)

    torch.manual_seed(cfg.seed)
    model = EquivariantPotential(mcfg).to(dtype)
    stats = fit_statistics(model, train_graphs)
    model = model.to(device)
    weights = (cfg.energy_weight, cfg.forces_weight, cfg.stress_weight)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay or 0.01)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_batches = math.ceil(len(train_graphs) / cfg.batch_size)
    if cfg.scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=cfg.min_lr
        )
    elif cfg.scheduler == "cosine":
        total = cfg.max_steps or cfg.max_epochs * n_batches
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=cfg.min_lr)
    else:
        sched = None
    ema = _EMA(model, cfg.ema_decay)

    out = Path(out) if out is not None else None
    ckpt_path, csv_path = _paths(out)
    fingerprint = {
        "format_version": FILE_FORMAT_VERSION,
        "model": mcfg.to_dict(),
        "n_train": len(train_graphs),
        "n_valid": len(valid_graphs),
        "train_energy_sum": round(float(sum(float(g.energy[0]) for g in train_graphs)), 6),
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "dtype": cfg.dtype,
    }
    state = {
        "step": 0, "epoch": 0, "batch": 0, "history": [], "best_loss": math.inf, "best_valid": {},
        "bad_validations": 0, "epoch_loss_sum": 0.0, "epoch_loss_n": 0, "elapsed": 0.0, "stopped": None,
        "best_state": None,
    }
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{ckpt_path} is not a sciml training checkpoint")
        if ck["fingerprint"] != fingerprint:
            raise ValueError(
                f"checkpoint {ckpt_path} was written for different data or settings; delete it or pass resume=False "
                f"(--no-resume) to start again"
            )
        model.load_state_dict(ck["model"])
        ema.model.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None and ck.get("scheduler") is not None:
            sched.load_state_dict(ck["scheduler"])
        state.update(ck["state"])
        if state["stopped"] == "max_time" or state["stopped"] == "max_steps":
            state["stopped"] = None  # a new budget continues the run

    def elapsed() -> float:  # training wall time summed over resumed runs
        return elapsed_base + time.perf_counter() - t_run

    def checkpoint() -> None:
        if ckpt_path is None or not dist_info.is_main:
            return
        state["elapsed"] = elapsed()
        atomic_torch_save(
            {
                "format": CHECKPOINT_FORMAT,
                "fingerprint": fingerprint,
                "config": asdict(cfg),
                "model": model.state_dict(),
                "ema": ema.model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "state": state,
            },
            ckpt_path,
        )

    def write_model(m) -> None:
        if out is None or not dist_info.is_main:
            return
        save_model(
            m, out,
            metadata={"statistics": stats, "train_config": asdict(cfg), "best_valid": state["best_valid"],
                      "step": state["step"], "epoch": state["epoch"], "n_train": len(train_graphs)},
        )

    def validate() -> dict:
        ema.model.eval()
        acc = _error_sums(ema.model, valid_graphs, dist_info, max(cfg.batch_size, 16), weights)
        m = _metrics_from_sums(acc, weights)
        row = {
            "epoch": state["epoch"], "step": state["step"],
            "time_s": round(elapsed(), 3),
            "lr": opt.param_groups[0]["lr"],
            "train_loss": state["epoch_loss_sum"] / max(state["epoch_loss_n"], 1),
            "valid_loss": m["loss"],
            "valid_energy_mae_meV_per_atom": m["energy_mae_meV_per_atom"],
            "valid_energy_rmse_meV_per_atom": m["energy_rmse_meV_per_atom"],
            "valid_forces_mae_meV_per_A": m["forces_mae_meV_per_A"],
            "valid_forces_rmse_meV_per_A": m["forces_rmse_meV_per_A"],
        }
        if "stress_mae_GPa" in m:
            row["valid_stress_mae_GPa"] = m["stress_mae_GPa"]
        improved = m["loss"] < state["best_loss"]
        row["best"] = improved
        state["history"].append(row)
        if improved:
            state["best_loss"] = m["loss"]
            state["best_valid"] = {k: v for k, v in m.items()}
            state["bad_validations"] = 0
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in ema.model.state_dict().items()}
            write_model(ema.model)
        else:
            state["bad_validations"] += 1
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(m["loss"])
        if csv_path is not None and dist_info.is_main:
            _write_csv(csv_path, state["history"])
        return row

    t_run = time.perf_counter()
    elapsed_base = float(state["elapsed"])
    rng_base = cfg.seed
    show = cfg.progress and not quiet_progress() and dist_info.is_main
    bar = tqdm(total=cfg.max_epochs, initial=state["epoch"], desc="train", unit="epoch", disable=not show,
               dynamic_ncols=True)
    last_row = state["history"][-1] if state["history"] else {}
    stop = state["stopped"]
    if state["bad_validations"] >= cfg.early_stopping_patience:
        stop = stop or "early_stopping"
    model.train()
    while stop is None and state["epoch"] < cfg.max_epochs:
        perm = np.random.default_rng(rng_base + state["epoch"]).permutation(len(train_graphs))
        batches = [perm[k : k + cfg.batch_size] for k in range(0, len(perm), cfg.batch_size)]
        while state["batch"] < len(batches):
            idx = batches[state["batch"]]
            mine = [train_graphs[k] for k in idx[dist_info.rank :: dist_info.world]]
            counts = (
                len(idx),
                sum(3 * int(train_graphs[k].n_atoms[0]) for k in idx),
                sum(9 * int(train_graphs[k].has_stress[0]) for k in idx),
            )
            opt.zero_grad(set_to_none=False)
            if mine:
                loss = _batch_loss(model, mine, counts, weights, device, dtype)
                loss.backward()
                lval = loss.detach().double().cpu()
            else:
                lval = torch.zeros((), dtype=torch.float64)
            if dist_info.world > 1:
                flat = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype,
                                  device=p.device) for p in params])
                _all_reduce_(flat, dist_info)
                o = 0
                for p in params:
                    n = p.numel()
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    p.grad.copy_(flat[o : o + n].view_as(p))
                    o += n
                lval = _all_reduce_(lval.reshape(1), dist_info)[0]
            opt.step()
            if isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR):
                sched.step()
            ema.update(model, state["step"])
            state["step"] += 1
            state["batch"] += 1
            state["epoch_loss_sum"] += float(lval)
            state["epoch_loss_n"] += 1
            bar.set_postfix(loss=f"{float(lval):.3g}", F_mae=f"{last_row.get('valid_forces_mae_meV_per_A', float('nan')):.1f}",
                            lr=f"{opt.param_groups[0]['lr']:.2g}", refresh=False)
            if callback is not None:
                callback({"step": state["step"], "epoch": state["epoch"], "loss": float(lval)})
            if cfg.valid_max_steps and state["step"] % cfg.valid_max_steps == 0:
                last_row = validate()
                model.train()
            if state["step"] % cfg.checkpoint_every == 0:
                checkpoint()
            if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
                stop = "max_steps"
                break
            if cfg.max_time is not None:
                over = time.perf_counter() - t_start >= cfg.max_time
                if dist_info.world > 1:  # every rank must agree
                    t = _all_reduce_(torch.tensor([float(over)]), dist_info)
                    over = bool(t[0] > 0)
                if over:
                    stop = "max_time"
                    break
        if state["batch"] >= len(batches):
            state["epoch"] += 1
            state["batch"] = 0
            bar.update(1)
            if state["epoch"] % cfg.valid_every == 0 or stop is not None or state["epoch"] >= cfg.max_epochs:
                last_row = validate()
                model.train()
                bar.set_postfix(loss=f"{last_row['train_loss']:.3g}", F_mae=f"{last_row['valid_forces_mae_meV_per_A']:.1f}",
                                lr=f"{opt.param_groups[0]['lr']:.2g}")
                state["epoch_loss_sum"], state["epoch_loss_n"] = 0.0, 0
                if state["bad_validations"] >= cfg.early_stopping_patience:
                    stop = "early_stopping"
                if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau) and \
                        opt.param_groups[0]["lr"] <= cfg.min_lr * 1.0001 and state["bad_validations"] >= cfg.plateau_patience:
                    stop = "lr_below_min"
        elif stop is not None and state["epoch_loss_n"] > 0:
            last_row = validate()  # stopped mid-epoch: validate what we have
    bar.close()
    if stop is None:
        stop = "max_epochs"
    state["stopped"] = stop
    checkpoint()
    best = EquivariantPotential(mcfg).to(dtype)
    if state["best_state"] is not None:
        best.load_state_dict(state["best_state"])
    else:
        best.load_state_dict(ema.model.state_dict())
    best = best.to(device).eval()
    if dist_info.initialized_here:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(
        model_path=out, model=best, history=list(state["history"]), best_valid=dict(state["best_valid"]),
        steps=state["step"], epochs=state["epoch"], stop_reason=stop, wall_time_s=time.perf_counter() - t_start,
        statistics=stats,
    )
