"""Measuring a run against labelled footage: how well its boxes, tracks and identity clusters
match what a person labelled."""
