"""Tiny test-only workflows for the engine tests (importable as ``toyflows.<name>``)."""
