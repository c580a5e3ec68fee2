"""E(3)-equivariant message-passing potential (NequIP-style, built on e3nn).

Data flow for one batch (see :class:`EquivariantPotential`):

1. element embedding: species -> ``C x 0e`` node features;
2. edges: vectors ``r_ij``, spherical harmonics ``Y_lm(r_ij/|r_ij|)`` for ``l <= lmax`` and a
   Bessel radial basis times a smooth polynomial cutoff envelope (the radial parts once per pair of
   reverse edges ``i->j``/``j->i``, which have the same length: :mod:`~sciml.potentials.edge_pairs`);
3. ``num_layers`` interaction blocks: linear -> equivariant tensor product of neighbour
   features with ``Y(r_ij)`` (channel-wise "uvu" paths, weights from a radial MLP of the
   Bessel basis, multiplied by the envelope) -> sum over neighbours / sqrt(avg. neighbours)
   -> linear + species-dependent self-connection -> gated nonlinearity. Hidden features are
   ``C x 0e + C x 1o + C x 2e + ...`` up to ``lmax``; the last block only produces scalars
   (the readout needs nothing else, which saves a third of the work);
4. invariant readout (MLP on the scalars) -> per-atom energy
   ``E_i = scale * y_i + shift + E0[Z_i]`` summed per structure.

``E0`` (per-element reference energies) are fitted by least squares on the training set,
``scale`` is the RMS of the training forces and ``shift`` the mean residual energy per atom
(see :func:`sciml.potentials.train.fit_statistics`), so training starts near the right
energies. Units: Å, eV.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

from .edge_pairs import edge_pairs
from .radial import BesselBasis, PolynomialCutoff, RadialMLP
from .tensor_product import ChannelwiseTensorProduct, PaddedEdges, convolve


@dataclass
class ModelConfig:
    """Hyperparameters of :class:`EquivariantPotential` (all stored in saved model files).

    species : atomic numbers the model knows, in embedding order
    cutoff : neighbour cutoff radius (Å); default 5.0
    num_channels : multiplicity C of every irrep in the hidden features; default 32
    num_layers : interaction blocks (>= 2); default 2
    lmax : largest spherical-harmonic order of edge and hidden features; default 2. ``lmax=0`` gives a
        rotation-invariant network (scalar features only, messages from radial functions of the
        neighbour species), 2-3x cheaper per training step; it won the screen on the EMT alloy set (a
        radial-density potential). Directional bonding (molecules, covalent solids) needs ``lmax >= 1``.
    num_basis : Bessel basis functions; default 8
    cutoff_p : order of the polynomial cutoff envelope; default 6
    radial_hidden : width of the radial MLPs (two hidden layers); default 32
    readout_hidden : width of the readout MLP; default 16
    tensor_product : "channelwise" (default, sciml's fast uvu kernel) or "e3nn" (``o3.TensorProduct``;
        the kernel of model files written by sciml development builds, format version 1)
    """

    species: list = field(default_factory=list)
    cutoff: float = 5.0
    num_channels: int = 32
    num_layers: int = 2
    lmax: int = 2
    num_basis: int = 8
    cutoff_p: int = 6
    radial_hidden: int = 32
    readout_hidden: int = 16
    tensor_product: str = "channelwise"

    def validate(self) -> "ModelConfig":
        if not self.species:
            raise ValueError("ModelConfig.species is empty: give the atomic numbers the model should know")
        if len(set(self.species)) != len(self.species):
            raise ValueError(f"ModelConfig.species has duplicates: {self.species}")
        for name in ("num_channels", "num_layers", "num_basis", "radial_hidden", "readout_hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {v!r}")
        if self.num_layers < 2:
            raise ValueError(f"ModelConfig.num_layers must be >= 2, got {self.num_layers}")
        if not isinstance(self.lmax, int) or not 0 <= self.lmax <= 4:
            raise ValueError(f"ModelConfig.lmax must be an integer in 0..4, got {self.lmax!r}")
        if self.tensor_product not in ("channelwise", "e3nn"):
            raise ValueError(f"ModelConfig.tensor_product must be 'channelwise' or 'e3nn', got {self.tensor_product!r}")
        if not self.cutoff > 0:
            raise ValueError(f"ModelConfig.cutoff must be positive, got {self.cutoff!r}")
        self.species = [int(z) for z in self.species]
        self.cutoff = float(self.cutoff)
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def edge_vectors(
    positions: torch.Tensor, edge_index: torch.Tensor, shifts: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor
) -> torch.Tensor:
    """Edge vectors ``r_j - r_i + S @ cell`` (E, 3) in Å for edges ``(i, j, S)``."""
    centre, neighbour = edge_index[0], edge_index[1]
    vec = positions[neighbour] - positions[centre]
    if shifts.numel() and bool(shifts.any()):
        vec = vec + torch.einsum("ek,ekl->el", shifts, cell[batch[centre]])
    return vec


def _hidden_irreps(channels: int, lmax: int) -> o3.Irreps:
    return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])


class Interaction(nn.Module):
    """One equivariant interaction block (convolution + self-connection + gate)."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_target: o3.Irreps,
        num_species: int,
        num_basis: int,
        radial_hidden: int,
        tensor_product: str = "channelwise",
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        irreps_target = o3.Irreps(irreps_target)
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_target if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_target if ir.l > 0])
        gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps("")
        self.gate = Gate(
            scalars, [torch.nn.functional.silu], gates, [torch.sigmoid] if gated.num_irreps else [], gated
        )
        irreps_pre = self.gate.irreps_in  # what the linear layers must produce
        self.irreps_out = self.gate.irreps_out

        self.linear_up = o3.Linear(self.irreps_in, self.irreps_in)
        # channel-wise ("uvu") tensor-product paths from every input irrep and every
        # spherical harmonic to every output irrep that the block can use
        wanted = {ir for _, ir in irreps_pre}
        if tensor_product == "channelwise":
            self.tp = ChannelwiseTensorProduct(self.irreps_in, irreps_sh, wanted)
            self.irreps_mid = self.tp.irreps_out
        else:  # generic e3nn kernel, same paths
            mid, instr = [], []
            for i1, (mul, ir1) in enumerate(self.irreps_in):
                for i2, (_, ir2) in enumerate(irreps_sh):
                    for ir_out in ir1 * ir2:
                        if ir_out in wanted:
                            instr.append((i1, i2, len(mid), "uvu", True))
                            mid.append((mul, ir_out))
            irreps_mid, p, _ = o3.Irreps(mid).sort()
            instr = [(a, b, p[c], m, t) for a, b, c, m, t in instr]
            self.tp = o3.TensorProduct(
                self.irreps_in, irreps_sh, irreps_mid, instr, shared_weights=False, internal_weights=False
            )
            self.irreps_mid = irreps_mid.simplify()
        self.radial = RadialMLP(
            [num_basis, radial_hidden, radial_hidden, self.tp.weight_numel], torch.nn.functional.silu
        )
        self.linear_down = o3.Linear(self.irreps_mid, irreps_pre)
        self.self_connection = o3.FullyConnectedTensorProduct(
            self.irreps_in, o3.Irreps(f"{num_species}x0e"), irreps_pre
        )

    def forward(
        self,
        h: torch.Tensor,
        onehot: torch.Tensor,
        sh: torch.Tensor,
        basis: torch.Tensor,
        envelope: torch.Tensor,
        centre: torch.Tensor,
        neighbour: torch.Tensor,
        norm: float,
        pads: Optional[tuple] = None,
        pair: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        agg = self.aggregate(self.linear_up(h), sh, basis, envelope, centre, neighbour, h.shape[0], pads, pair)
        return self.update(h, onehot, agg, norm)

    def aggregate(
        self,
        x: torch.Tensor,
        sh: torch.Tensor,
        basis: torch.Tensor,
        envelope: torch.Tensor,
        centre: torch.Tensor,
        neighbour: torch.Tensor,
        num_centres: int,
        pads: Optional[tuple] = None,
        pair: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Messages summed per centre: ``(num_centres, irreps_mid.dim)``.

        ``x`` are the node features after ``linear_up`` (rows indexed by ``neighbour``), ``centre``
        indexes the output rows. The chunked evaluation (:mod:`sciml.potentials.chunked`) calls this
        on one block of centres at a time. With ``pair`` (E,), ``basis`` and ``envelope`` are given once per
        pair of reverse edges (:func:`~sciml.potentials.edge_pairs.edge_pairs`) and edge ``e`` uses row ``pair[e]``.
        """
        w = self.radial(basis, envelope)
        if pair is not None:
            w = w.index_select(0, pair)
        if pads is not None and isinstance(self.tp, ChannelwiseTensorProduct):
            return convolve(self.tp, x, sh, w, centre, neighbour, *pads, num_centres=num_centres)
        msg = self.tp(x[neighbour], sh, w)
        agg = torch.zeros((num_centres, msg.shape[1]), dtype=msg.dtype, device=msg.device)
        return agg.index_add(0, centre, msg)

    def update(self, h: torch.Tensor, onehot: torch.Tensor, agg: torch.Tensor, norm: float) -> torch.Tensor:
        """New node features from the old ones ``h`` and the aggregated messages ``agg`` (same rows)."""
        return self.gate(self.linear_down(agg * norm) + self.self_connection(h, onehot))


class EquivariantPotential(nn.Module):
    """E(3)-equivariant interatomic potential; ``forward`` returns per-atom energies (eV).

    Build it from a :class:`ModelConfig`; energies, forces and stress come from
    :func:`sciml.potentials.forces.compute_properties`.

    Example
    -------
    >>> import torch
    >>> from ase.build import molecule
    >>> from sciml.potentials.graph import atoms_to_graph
    >>> from sciml.potentials.forces import compute_properties
    >>> model = EquivariantPotential(ModelConfig(species=[1, 6, 8], num_channels=8)).double()
    >>> g = atoms_to_graph(molecule("CH3OH"), model.cutoff, model.species)
    >>> out = compute_properties(model, g)
    >>> out["forces"].shape
    torch.Size([6, 3])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.species = list(config.species)
        self.cutoff = config.cutoff
        S, C = len(self.species), config.num_channels
        self.embedding = nn.Embedding(S, C)
        self.irreps_sh = o3.Irreps.spherical_harmonics(config.lmax)
        self.sh = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")
        self.basis = BesselBasis(config.cutoff, config.num_basis)
        self.envelope = PolynomialCutoff(config.cutoff, config.cutoff_p)
        hidden = _hidden_irreps(C, config.lmax)
        layers = []
        irreps = o3.Irreps(f"{C}x0e")
        for k in range(config.num_layers):
            target = hidden if k < config.num_layers - 1 else o3.Irreps(f"{C}x0e")
            layer = Interaction(irreps, self.irreps_sh, target, S, config.num_basis, config.radial_hidden,
                                config.tensor_product)
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Sequential(
            nn.Linear(C, config.readout_hidden), nn.SiLU(), nn.Linear(config.readout_hidden, 1)
        )
        # statistics (set by fit_statistics before training; saved with the model)
        self.register_buffer("atomic_energies", torch.zeros(S))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("shift", torch.tensor(0.0))
        self.register_buffer("avg_num_neighbors", torch.tensor(1.0))
        # padded batched-matmul convolutions (same numbers; set False to use per-edge messages)
        self.fused = True
        # radial weights once per pair of reverse edges (same numbers; set False for once per edge)
        self.pair_radial = True

    @property
    def dtype(self) -> torch.dtype:
        return self.atomic_energies.dtype

    def num_parameters(self) -> int:
        """Number of learnable parameters (weights of the network, not the fixed statistics)."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        positions: torch.Tensor,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        shifts: torch.Tensor,
        cell: torch.Tensor,
        batch: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom energies (N,) in eV for the given (possibly strained) geometry."""
        centre, neighbour = edge_index[0], edge_index[1]
        pairs = edge_pairs(edge_index, shifts) if self.pair_radial and centre.numel() else None
        rep, pair = pairs if pairs is not None else (None, None)
        sh, basis, env = self.edge_attributes(edge_vectors(positions, edge_index, shifts, cell, batch), rep)
        onehot = torch.nn.functional.one_hot(species, len(self.species)).to(positions.dtype)
        h = self.embedding(species)
        norm = self.message_norm()
        pads = None
        if self.config.tensor_product == "channelwise" and self.fused and centre.numel():
            n = positions.shape[0]
            pads = (PaddedEdges(centre, n), PaddedEdges(neighbour, n))
        for layer in self.layers:
            h = layer(h, onehot, sh, basis, env, centre, neighbour, norm, pads, pair)
        return self.node_energies(h, species)

    def edge_attributes(
        self, vec: torch.Tensor, rep: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Spherical harmonics, radial basis and cutoff envelope of edge vectors ``vec`` (E, 3); with
        ``rep``, the radial basis and envelope of the edges ``vec[rep]`` only (one per pair of reverse edges)."""
        r = torch.linalg.norm(vec if rep is None else vec.index_select(0, rep), dim=-1)
        return self.sh(vec), self.basis(r), self.envelope(r)

    def message_norm(self) -> float:
        """The factor ``1/sqrt(avg. neighbours)`` applied to summed messages."""
        return float(self.avg_num_neighbors) ** -0.5

    def node_energies(self, h: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Per-atom energies (eV) from the scalar features of the last layer."""
        y = self.readout(h).squeeze(-1)
        return self.scale * y + self.shift + self.atomic_energies[species]


# --------------------------------------------------------------------------- saving / loading

FILE_FORMAT = "sciml-potential"
FILE_FORMAT_VERSION = 2  # 2: ModelConfig.tensor_product (version 1 files: development builds, e3nn kernel)
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def save_model(model: EquivariantPotential, path, metadata: Optional[dict] = None) -> None:
    """Save ``model`` as a self-contained file (weights, species, cutoff, hyperparameters, dtype, versions).

    Example
    -------
    >>> save_model(model, "model.pt")  # doctest: +SKIP
    """
    import e3nn

    from .._io import atomic_torch_save
    from .._version import __version__

    dtype = {v: k for k, v in _DTYPES.items()}[model.dtype]
    payload = {
        "format": FILE_FORMAT,
        "format_version": FILE_FORMAT_VERSION,
        "sciml_version": __version__,
        "torch_version": torch.__version__,
        "e3nn_version": e3nn.__version__,
        "model_class": "EquivariantPotential",
        "model_config": model.config.to_dict(),
        "species": list(model.species),
        "cutoff": float(model.cutoff),
        "dtype": dtype,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    atomic_torch_save(payload, path)


def load_model(
    path, device: Optional[str | torch.device] = None, dtype: Optional[str | torch.dtype] = None
) -> EquivariantPotential:
    """Load a model file written by :func:`save_model` (no training config needed).

    ``dtype`` ("float64"/"float32") overrides the stored precision. Raises ``ValueError``
    naming the problem when the file is not a sciml potential or is incompatible with this
    version of sciml.

    Example
    -------
    >>> model = load_model("model.pt", device="cpu")  # doctest: +SKIP
    """
    from pathlib import Path

    from .._version import __version__

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"model file {str(path)!r} could not be read as a torch file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        kind = "a training checkpoint" if isinstance(payload, dict) and payload.get("format") == "sciml-checkpoint" else "not a sciml potential file"
        raise ValueError(f"model file {str(path)!r} is {kind} (expected format {FILE_FORMAT!r})")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FILE_FORMAT_VERSION:
        raise ValueError(
            f"model file {str(path)!r} has format version {version!r}, written by sciml "
            f"{payload.get('sciml_version')}; this sciml ({__version__}) reads versions <= {FILE_FORMAT_VERSION}: upgrade sciml"
        )
    for key in ("model_config", "species", "cutoff", "dtype", "state_dict"):
        if key not in payload:
            raise ValueError(f"model file {str(path)!r} is missing the field {key!r}")
    hp = dict(payload["model_config"])
    if version == 1:  # development builds used e3nn's TensorProduct
        hp.setdefault("tensor_product", "e3nn")
    try:
        config = ModelConfig(**hp)
    except TypeError as exc:
        raise ValueError(f"model file {str(path)!r} has hyperparameters this sciml does not know: {exc}") from exc
    if list(config.species) != list(payload["species"]) or float(config.cutoff) != float(payload["cutoff"]):
        raise ValueError(f"model file {str(path)!r} is inconsistent: species/cutoff differ from its hyperparameters")
    model = EquivariantPotential(config)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"model file {str(path)!r} does not match the architecture of this sciml version ({__version__}); "
            f"it was written by sciml {payload.get('sciml_version')}: {str(exc)[:300]}"
        ) from exc
    if dtype is None:
        dtype = payload["dtype"]
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        dtype = _DTYPES[dtype]
    from .._runtime import resolve_device

    model = model.to(device=resolve_device(device), dtype=dtype)
    model.eval()
    model.metadata = dict(payload.get("metadata", {}))
    return model
