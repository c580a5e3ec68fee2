"""E(3)-equivariant neural interatomic potentials (e3nn + torch) with an ASE calculator."""
