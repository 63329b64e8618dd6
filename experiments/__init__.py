"""Experiments: each computes a tidy table (CSV), then plots from the table.

``python -m mamlcheck --help`` lists the commands.
"""
