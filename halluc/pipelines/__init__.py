"""Pipelines: one function per stage (decode, correct, evaluate, negatives, finetune, experiment), each
reading and writing JSONL records. Options are declared here (``add_options``) so that the command and the
experiment runner parse them the same way. See ARCHITECTURE.md."""
