"""Linear solvers for the training covariance ``K + noise``: dense Cholesky and preconditioned CG.

Both solve with the same covariance (:class:`TrainingCovariance`: descriptors, kernel
coefficients, noise) and give predictive variances; :func:`choose_solver` picks one from a
memory budget.

``CholeskySolver`` (exact)
    Assembles the lower triangle of the covariance block-row by block-row into one float64
    buffer and factorises it in place (LAPACK ``dpotrf``): peak memory one copy of the matrix,
    ``8 (N M)^2`` bytes (``M = 1 + 3 n_atoms``; 1000 ethanol frames: 6.3 GB), cost one Cholesky,
    ``(N M)^3 / 3`` flops (~2 min at N = 1000 ethanol, one core). Variances: one triangular solve.

``CGSolver`` (iterative, for what does not fit)
    Conjugate gradients from linear_operator (gpytorch's ``linear_cg``) with matrix-free
    products (:mod:`sciml.gp.kernel_products`: ``O(N^2 P D)`` per product, the covariance is
    never formed; only the per-pair kernel coefficients, ``3 P N^2`` numbers, are kept) and a
    block pivoted-Cholesky preconditioner: whole structures (``M`` columns at a time) are added
    greedily by largest remaining variance (the block version of the pivoted Cholesky of
    Harbrecht et al. 2012 that gpytorch uses element-wise; a block column costs one kernel
    evaluation per pair, an element column as much), ``U U^T ~ K``, plus each structure's own
    residual block ``D = blockdiag(K_bb - U_b U_b^T + noise_b)`` (what pivoting leaves is
    concentrated there), applied by Woodbury: ``P = U U^T + D``. On aspirin (N = 100, 16 pivot
    structures, noise 3 meV/Å) the block-diagonal part took CG from a relative residual of 0.99
    after 25 iterations (noise only in ``D``) to 1e-5 after 100. Predictive variances are exact
    given the pivot structures (the posterior of the GP conditioned on that subset): never smaller
    than the full-data variance, i.e. conservative; calibration on held-out frames
    (:meth:`GPPotential.calibrate`) rescales them.

    Reference labels (xTB/DFT) are nearly noiseless: the marginal likelihood puts the noise at
    ~1e-6 of the signal std, and the covariance's spectrum spans ~16 decades (ethanol, N = 300:
    eigenvalues from 1.7e4 down to round-off; the 6000th of 8400 is 4e6 times the noise
    variance). No preconditioner makes CG converge at that noise, so with CG the tuned noise stds
    are raised to an absolute floor (``GPPotential(min_noise=...)``, default 3 meV and 3 meV/Å)
    before the solve; on ethanol (N = 300) that changed the test force MAE of the exact GP from
    21.07 to 21.01 meV/Å.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .descriptors import Geometry, Permutations
from .hyperparameters import HyperparameterWarning
from .kernel_products import PermutedTraining, kernel_times
from .kernels import assemble

__all__ = ["TrainingCovariance", "CholeskySolver", "CGSolver", "cholesky_in_place", "choose_solver",
           "parse_memory", "default_max_memory", "prior_diagonal"]

Coeffs = Callable[[Geometry, Geometry], tuple]


@dataclass
class TrainingCovariance:
    """``K = k(X, X) + diag(noise)`` of the training set, described without forming it.

    ``coeffs(ga, gb)`` returns the per-pair kernel coefficients ``(P, na, nb)``; ``noise`` the
    diagonal (noise variances plus jitter), interleaved like the targets.
    """

    geo: Geometry
    perms: Permutations
    coeffs: Coeffs
    noise: np.ndarray

    @property
    def n_obs(self) -> int:
        """Rows of the covariance, ``N M``."""
        return len(self.geo) * self.geo.n_outputs


def parse_memory(value: int | float | str | None) -> int:
    """Bytes from ``8e9``, ``"8GB"``, ``"512MB"``, ``"8GiB"``; ``None``: :func:`default_max_memory`.

    Example
    -------
    >>> parse_memory("1.5GB")
    1500000000
    """
    if value is None:
        return default_max_memory()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"max_memory must be positive, got {value!r}")
        return int(value)
    if isinstance(value, str):
        units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1}
        s = value.strip().upper()
        for u, f in units.items():
            if s.endswith(u):
                try:
                    return int(float(s[: -len(u)]) * f)
                except ValueError:
                    break
    raise ValueError(f"max_memory must be a number of bytes or a string like '8GB', got {value!r}")


def default_max_memory() -> int:
    """Half of the machine's physical memory (what the GP may use by default)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GB
        return 8 * 10**9


def cholesky_in_place(K: np.ndarray) -> int:
    """Factorise the C-ordered symmetric ``K`` in place: its lower triangle becomes ``L`` (``K = L L^T``).

    Only the lower triangle of ``K`` is read; no copy is made. Returns LAPACK's ``info``
    (0 on success). With one torch thread this calls scipy's OpenBLAS ``dpotrf`` limited to
    one thread (the fastest single-core path here); with more threads torch's LAPACK (MKL
    on x86 wheels; threads follow ``torch.set_num_threads``): multi-threaded OpenBLAS
    ``dpotrf`` crashed (segmentation fault) on a 28,000-square matrix on this machine.
    """
    if torch.get_num_threads() == 1:
        from scipy.linalg import lapack
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            _, info = lapack.dpotrf(K.T, lower=0, clean=0, overwrite_a=1)
        return int(info)
    Kt = torch.from_numpy(K)
    info = torch.zeros((), dtype=torch.int32)
    torch.linalg.cholesky_ex(Kt.T, upper=True, out=(Kt.T, info))
    return int(info)


def prior_blocks(gt: Geometry, cov: TrainingCovariance) -> torch.Tensor:
    """Prior covariance ``k(x, x)`` of each structure of ``gt`` with itself: ``(nt, M, M)``."""
    m = gt.n_outputs
    return torch.stack([assemble(gt[i : i + 1], gt[i : i + 1], cov.perms, *cov.coeffs(gt[i : i + 1], gt[i : i + 1]))
                        .reshape(m, m) for i in range(len(gt))])


def prior_diagonal(gt: Geometry, cov: TrainingCovariance) -> np.ndarray:
    """Prior variances ``k(x, x)`` of every output of every structure in ``gt``: ``(nt, M)``."""
    m = gt.n_outputs
    rows = [assemble(gt[i : i + 1], gt[i : i + 1], cov.perms, *cov.coeffs(gt[i : i + 1], gt[i : i + 1]))
            .reshape(m, m).diagonal() for i in range(len(gt))]
    return torch.stack(rows).numpy()


class CholeskySolver:
    """Exact dense solver (see the module docstring). ``chunk_size``: structures per assembled block row."""

    name = "cholesky"

    def __init__(self, chunk_size: int = 32, progress: bool = False):
        self.chunk_size = int(chunk_size)
        self.progress = progress
        self.factor: np.ndarray | None = None

    @staticmethod
    def memory(n_obs: int) -> int:
        """Bytes of the factor (the peak memory of the fit, to within the descriptors)."""
        return 8 * n_obs * n_obs

    def factorize(self, cov: TrainingCovariance, jitter_var: float) -> float:
        """Assemble and factorise ``K + jitter``; on failure retry with 100x the jitter (up to 5 times, warned).

        Returns the jitter variance used.
        """
        from tqdm.auto import tqdm

        geo, n, m = cov.geo, len(cov.geo), cov.geo.n_outputs
        nt = n * m
        self.factor = None
        # torch's allocator maps this buffer with huge pages: first touch of 6.3 GB (N=1000) costs ~2 s instead of
        # ~13 s of page faults for np.empty on this machine
        Kt = torch.empty((nt, nt), dtype=torch.float64)
        K = Kt.numpy()
        cs = self.chunk_size
        for _ in range(6):
            for a0 in tqdm(range(0, n, cs), desc="GP covariance", disable=not self.progress or n <= cs, leave=False):
                a1 = min(n, a0 + cs)
                ga, gb = geo[a0:a1], geo[0:a1]
                block = Kt[a0 * m : a1 * m, : a1 * m].view(a1 - a0, m, a1, m)
                assemble(ga, gb, cov.perms, *cov.coeffs(ga, gb), out=block, accumulate=False)
            K.flat[:: nt + 1] += cov.noise + jitter_var
            if cholesky_in_place(K) == 0:
                self.factor = K
                return jitter_var
            jitter_var *= 100.0
            warnings.warn(f"covariance not positive definite; retrying with jitter variance {jitter_var:.1e}",
                          HyperparameterWarning, stacklevel=3)
        raise np.linalg.LinAlgError("the GP covariance could not be factorised")

    def solve(self, B: np.ndarray) -> np.ndarray:
        """``K^-1 B`` from the in-place factor (two triangular solves, no copy of the factor)."""
        L = torch.from_numpy(self.factor)  # lower triangle: L = U^T, K = L L^T
        V = torch.linalg.solve_triangular(L, torch.as_tensor(B, dtype=torch.float64), upper=False)
        return torch.linalg.solve_triangular(L.T, V, upper=True).numpy()

    def variance_reduction(self, gt: Geometry, cov: TrainingCovariance) -> np.ndarray:
        """``diag(k(x, X) K^-1 k(X, x))`` for every output of ``gt``: ``(nt, M)``."""
        nb, m = len(gt), gt.n_outputs
        Ks = assemble(gt, cov.geo, cov.perms, *cov.coeffs(gt, cov.geo)).reshape(nb * m, -1)
        V = torch.linalg.solve_triangular(torch.from_numpy(self.factor), Ks.T, upper=False).numpy()
        return (V * V).sum(0).reshape(nb, m)

    def info(self) -> dict:
        """What the solve did (for the fit summary)."""
        return dict(solver=self.name, memory_bytes=None if self.factor is None else self.factor.nbytes)


class CGSolver:
    """Preconditioned conjugate gradients with matrix-free kernel products (see the module docstring).

    Parameters
    ----------
    max_memory: bytes the solver may use (the preconditioner takes at most half).
    tol: relative residual ``|K x - b| / |b|`` at which CG stops (mean over right-hand sides).
    max_iter: CG iterations at most (a solve that stops there is warned about, with its residual).
    n_pivots: structures in the pivoted-Cholesky preconditioner (default: as many as half of
        ``max_memory`` holds, at most 128 and at most ``N``).
    row_chunk: rows (structures) per block of a matrix-free product.
    """

    name = "cg"

    def __init__(self, max_memory: int, tol: float = 1e-7, max_iter: int = 3000, n_pivots: int | None = None,
                 row_chunk: int = 128, progress: bool = False):
        self.max_memory = int(max_memory)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.n_pivots = n_pivots
        self.row_chunk = int(row_chunk)
        self.progress = progress
        self.iterations: list[int] = []
        self.residuals: list[float] = []
        self._bar = None

    @staticmethod
    def memory(n: int, m: int, n_perms: int, n_pivots: int) -> int:
        """Bytes: kernel coefficients ``3 P N^2``, preconditioner ``N M x n_pivots M`` (x2 while built), CG vectors."""
        return 8 * (3 * n_perms * n * n + 2 * n * m * n_pivots * m + 12 * n * m)

    # ---------------------------------------------------------------- products
    def matmul(self, V: torch.Tensor) -> torch.Tensor:
        """``(K + noise) V`` for ``V`` of shape ``(N M, k)`` without forming ``K``."""
        geo = self.cov.geo
        n, m = len(geo), geo.n_outputs
        k = V.shape[-1]
        w = self.train.weights(V.reshape(n, m, k))
        out = torch.empty(n, m, k, dtype=torch.float64)
        for a0 in range(0, n, self.row_chunk):
            a1 = min(n, a0 + self.row_chunk)
            e, f = kernel_times(geo[a0:a1], tuple(c[:, a0:a1] for c in self.C), self.train, w)
            out[a0:a1, 0] = e
            out[a0:a1, 1:] = f
        self.n_matmul += 1
        if self._bar is not None:
            self._bar.update(1)
        return out.reshape(n * m, k) + self.noise[:, None] * V

    def _block_solve(self, R: torch.Tensor) -> torch.Tensor:
        """``D^-1 R`` with ``D`` block diagonal: one ``M x M`` residual block (plus noise) per structure."""
        n, m = self.D_chol.shape[0], self.D_chol.shape[1]
        k = R.shape[-1]
        return torch.cholesky_solve(R.reshape(n, m, k), self.D_chol).reshape(n * m, k)

    def precondition(self, R: torch.Tensor) -> torch.Tensor:
        """``(U U^T + D)^-1 R`` by Woodbury: ``D^-1 R - D^-1 U S^-1 U^T D^-1 R``, ``S = I + U^T D^-1 U``."""
        DR = self._block_solve(R)
        if self.U is None:
            return DR
        t = torch.cholesky_solve(self.U.T @ DR, self.S_chol)
        return DR - self._block_solve(self.U @ t)

    # ---------------------------------------------------------------- set-up
    def _pivot_budget(self, n: int, m: int) -> int:
        if self.n_pivots is not None:
            return max(0, min(int(self.n_pivots), n))
        fixed = 8 * (3 * len(self.cov.perms) * n * n + 12 * n * m)
        per_pivot = 8 * 2 * n * m * m
        return max(0, min(n, 128, (self.max_memory // 2 - fixed) // per_pivot))

    def _build_preconditioner(self, jitter_var: float) -> None:
        """Block pivoted Cholesky ``U U^T ~ K`` over whole structures, largest remaining variance first (each pivot
        block factorised with its noise added: ``U U^T = K_:P (K_PP + noise_P)^-1 K_P:``, a regularised Nyström
        approximation that stays below ``K``)."""
        from tqdm.auto import tqdm

        cov, geo = self.cov, self.cov.geo
        n, m = len(geo), geo.n_outputs
        budget = self._pivot_budget(n, m)
        diag = torch.as_tensor(prior_diagonal(geo, cov)).reshape(-1)
        start = float(diag.sum())
        U = torch.empty(n * m, budget * m, dtype=torch.float64)
        pivots: list[int] = []
        for k in tqdm(range(budget), desc="GP preconditioner", disable=not self.progress, leave=False):
            score = diag.reshape(n, m).sum(1)
            score[pivots] = -math.inf
            b = int(torch.argmax(score))
            if float(score[b]) <= 1e-12 * start:
                break
            col = assemble(geo, geo[b : b + 1], cov.perms, *cov.coeffs(geo, geo[b : b + 1])).reshape(n * m, m)
            if k:
                col -= U[:, : k * m] @ U[b * m : (b + 1) * m, : k * m].T
            blk = col[b * m : (b + 1) * m]
            # the pivot block is regularised by its own noise (+ jitter): a structure's force block is singular in the
            # rigid-body directions, and a jitter relative to a small first mixture component is below round-off
            L, info = torch.linalg.cholesky_ex(0.5 * (blk + blk.T) + torch.diag(self.noise[b * m : (b + 1) * m]))
            if int(info) != 0:
                break
            new = torch.linalg.solve_triangular(L, col.T, upper=False).T
            U[:, k * m : (k + 1) * m] = new
            diag -= (new * new).sum(1)
            pivots.append(b)
        self.pivots = np.array(pivots, dtype=np.int64)
        self.U = U[:, : len(pivots) * m].contiguous() if pivots else None
        del U
        self.residual_trace = float(diag.clamp_min(0).sum()) / max(start, 1e-300)
        self._block_diagonal(jitter_var)
        if self.U is not None:
            S = torch.zeros(self.U.shape[1], self.U.shape[1], dtype=torch.float64)
            rows = self.row_chunk * m
            for r0 in range(0, n * m, rows):  # S = I + U^T D^-1 U, D block diagonal: structure by structure
                Ur = self.U[r0 : r0 + rows]
                nb = Ur.shape[0] // m
                b0 = r0 // m
                DU = torch.cholesky_solve(Ur.reshape(nb, m, -1), self.D_chol[b0 : b0 + nb]).reshape(nb * m, -1)
                S += Ur.T @ DU
            S.diagonal().add_(1.0)
            self.S_chol = torch.linalg.cholesky(S)

    def _block_diagonal(self, jitter_var: float) -> None:
        """Per-structure residual blocks ``K_bb - U_b U_b^T + noise_b`` and their Cholesky factors.

        Pivoting captures the largest directions of ``K``; what it leaves is concentrated in each
        structure's own block (its energy and force components are strongly correlated), so the
        preconditioner keeps those blocks exactly instead of only the noise: ``P = U U^T + D``.
        """
        cov, geo = self.cov, self.cov.geo
        n, m = len(geo), geo.n_outputs
        blocks = prior_blocks(geo, cov)
        if self.U is not None:
            Ub = self.U.reshape(n, m, -1)
            blocks -= torch.bmm(Ub, Ub.transpose(1, 2))
        blocks = 0.5 * (blocks + blocks.transpose(1, 2))
        blocks += torch.diag_embed(self.noise.reshape(n, m))
        L, info = torch.linalg.cholesky_ex(blocks)
        if bool((info != 0).any()):  # round-off made a residual block indefinite: fall back to its diagonal (counted)
            bad = info != 0
            self.n_diagonal_blocks = int(bad.sum())
            diag = torch.diagonal(blocks[bad], dim1=1, dim2=2).clamp_min(jitter_var)
            L[bad] = torch.diag_embed(diag.sqrt())
        else:
            self.n_diagonal_blocks = 0
        self.D_chol = L

    def factorize(self, cov: TrainingCovariance, jitter_var: float) -> float:
        """Cache the kernel coefficients, build the preconditioner and the pivot-subset factor for variances."""
        self.cov = cov
        self.noise = torch.as_tensor(cov.noise, dtype=torch.float64) + jitter_var
        self.train = PermutedTraining(cov.geo, cov.perms)
        self.C = tuple(c.contiguous() for c in cov.coeffs(cov.geo, cov.geo))
        self.n_matmul = 0
        self._build_preconditioner(jitter_var)
        m = cov.geo.n_outputs
        if len(self.pivots):
            gp_ = cov.geo[torch.as_tensor(self.pivots)]
            Kpp = assemble(gp_, gp_, cov.perms, *cov.coeffs(gp_, gp_)).reshape(len(self.pivots) * m, -1)
            idx = (torch.as_tensor(self.pivots)[:, None] * m + torch.arange(m)[None]).reshape(-1)
            Kpp.diagonal().add_(self.noise[idx])
            self.pivot_chol = torch.linalg.cholesky(Kpp)
        return jitter_var

    # ---------------------------------------------------------------- solve and variance
    def solve(self, B: np.ndarray) -> np.ndarray:
        """``(K + noise)^-1 B`` by preconditioned CG (linear_operator's ``linear_cg``); residuals are recorded."""
        from linear_operator.utils.linear_cg import linear_cg
        from tqdm.auto import tqdm

        b = torch.as_tensor(B, dtype=torch.float64)
        b2 = b.reshape(b.shape[0], -1)
        n0 = self.n_matmul
        self._bar = tqdm(total=self.max_iter, desc="GP conjugate gradients", disable=not self.progress, leave=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # linear_operator's NumericalWarning: we report the residual ourselves
            x = linear_cg(self.matmul, b2, tolerance=self.tol, eps=1e-300, stop_updating_after=0.0,
                          max_iter=self.max_iter, preconditioner=self.precondition)
        self._bar.close()
        self._bar = None
        res = float(((self.matmul(x) - b2).norm(dim=0) / b2.norm(dim=0).clamp_min(1e-300)).max())
        self.iterations.append(self.n_matmul - n0 - 1)
        self.residuals.append(res)
        if res > 10 * self.tol:
            warnings.warn(f"CG stopped after {self.iterations[-1]} iterations at relative residual {res:.2e} "
                          f"(tol {self.tol:.0e}); raise max_iter or the noise floor", HyperparameterWarning,
                          stacklevel=3)
        return x.reshape(b.shape).numpy()

    def variance_reduction(self, gt: Geometry, cov: TrainingCovariance) -> np.ndarray:
        """``diag(k(x, P) K_PP^-1 k(P, x))`` over the pivot structures ``P``: a lower bound of the full-data
        reduction, so the variance is conservative (exact for the GP conditioned on the pivots)."""
        nb, m = len(gt), gt.n_outputs
        if not len(self.pivots):
            return np.zeros((nb, m))
        gp_ = cov.geo[torch.as_tensor(self.pivots)]
        Ks = assemble(gt, gp_, cov.perms, *cov.coeffs(gt, gp_)).reshape(nb * m, -1)
        V = torch.linalg.solve_triangular(self.pivot_chol, Ks.T, upper=False).numpy()
        return (V * V).sum(0).reshape(nb, m)

    def info(self) -> dict:
        """What the solves did: iterations, relative residuals, pivots, preconditioner quality."""
        return dict(solver=self.name, cg_iterations=list(self.iterations), cg_residuals=list(self.residuals),
                    n_pivots=int(len(self.pivots)), preconditioner_residual_trace=self.residual_trace,
                    n_diagonal_blocks=self.n_diagonal_blocks, tol=self.tol)


def choose_solver(solver: str, n: int, m: int, n_perms: int, max_memory: int) -> str:
    """``"cholesky"`` or ``"cg"`` for ``solver="auto"``: Cholesky when its factor (plus 10 %) fits ``max_memory``.

    An explicit ``"cholesky"`` that does not fit raises ``MemoryError`` naming the sizes.
    """
    if solver not in ("auto", "cholesky", "cg"):
        raise ValueError(f"solver must be 'auto', 'cholesky' or 'cg', got {solver!r}")
    need = int(1.1 * CholeskySolver.memory(n * m))
    if solver == "cholesky" and need > max_memory:
        raise MemoryError(f"the Cholesky factor of {n} frames x {m} outputs needs {need / 1e9:.1f} GB but "
                          f"max_memory is {max_memory / 1e9:.1f} GB; use solver='cg' or 'auto'")
    if solver == "auto":
        return "cholesky" if need <= max_memory else "cg"
    return solver
