"""Thin commands: parse arguments, call one pipeline function, print. See ARCHITECTURE.md."""
