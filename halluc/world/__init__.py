"""The controlled world (DESIGN.md §7): scenes with exact ground truth, their exports, and metrics."""
