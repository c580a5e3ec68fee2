"""Lande--Arnold selection-gradient analysis on pandas data."""
