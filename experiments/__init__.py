"""Experiments: each computes a tidy table (CSV), then plots from the table.

``python -m experiments --help`` lists the commands.
"""
