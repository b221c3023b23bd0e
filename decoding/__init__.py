"""decoding: decode methods (DESIGN.md §1, §5), a library of its own that imports nothing of the project.

    from decoding.methods import VCD
    from decoding.params import VCDParams, parse
    m = VCD(parse(VCDParams, {"alpha": "1", "greedy": "true"}, "vcd"))
    outs = m.decode(model, processor, examples, max_new_tokens=64, seed=0, template="chat")

Baselines (greedy, beam) run through transformers' ``generate``; sample and the contrastive methods
(vcd, icd, vdd, m3id) share one core (decoding/core.py). Methods are chosen by name through
``halluc.registry`` (``make_decoder("vcd", {...})``). Importing this package does not import torch.
"""
