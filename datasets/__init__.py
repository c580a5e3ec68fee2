"""Bundled data sets of sciml (installed as the package ``sciml._bundled``)."""
