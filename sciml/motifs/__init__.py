"""Recurrent networks trained by BPTT and network-motif analysis of their weights."""
