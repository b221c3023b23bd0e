"""detectors: see DESIGN.md §1 (filled in by later issues)."""
