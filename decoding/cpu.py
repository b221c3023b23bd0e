"""CPU matmuls for small batches: oneDNN instead of MKL for a model's ``nn.Linear`` layers.

    n = use_onednn_linears(model)        # float32 inference on CPU; returns how many layers were swapped

Why: decoding a token multiplies a few rows by every weight matrix, so it should cost one pass over
the weights whatever the row count. PyTorch's default CPU path (MKL sgemm) runs fewer than 4 rows as
one matrix-vector product per row — two rows read the weights twice — so the 2B-row batch of
contrastive decoding costs ~2x a single row on a large model. oneDNN's matmul reads them once
(measured on a ~100M model: 2 rows cost 1.2x one row instead of 1.8x). Results agree with the dense
path to float rounding, not bit for bit, so this is opt-in (``--cpu-onednn``, the speed benchmark).
"""
from __future__ import annotations

import torch


class OneDNNLinear(torch.nn.Module):
    """``nn.Linear`` computed by oneDNN on a pre-packed copy of the weight (the dense one is kept
    for code that inspects ``.weight``)."""

    def __init__(self, lin: torch.nn.Linear):
        super().__init__()
        self.in_features, self.out_features = lin.in_features, lin.out_features
        self.weight, self.bias = lin.weight, lin.bias
        with torch.no_grad():
            bias = lin.bias.detach().float() if lin.bias is not None else torch.zeros(lin.out_features)
            self.register_buffer("packed_w", lin.weight.detach().float().to_mkldnn(), persistent=False)
            self.register_buffer("packed_b", bias.to_mkldnn(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = torch._C._nn.mkldnn_linear(x.reshape(-1, self.in_features).contiguous().to_mkldnn(), self.packed_w,
                                       self.packed_b)
        return y.to_dense().reshape(*lead, self.out_features)


def use_onednn_linears(model: torch.nn.Module) -> int:
    if not torch.backends.mkldnn.is_available():
        raise RuntimeError("this PyTorch build has no oneDNN (mkldnn); run without --cpu-onednn")
    if next(model.parameters()).device.type != "cpu" or next(model.parameters()).dtype != torch.float32:
        raise ValueError("oneDNN linears are for float32 models on the CPU")
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, OneDNNLinear(child))
                n += 1
    return n
