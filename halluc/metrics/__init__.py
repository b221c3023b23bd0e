"""Metrics: CHAIR and POPE (and, for the controlled world, attribute/relation/count errors)."""
