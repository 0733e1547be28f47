"""The bf16 dense peak of a GPU, the denominator of the MFU a run logs (metrics.jsonl `mfu`).

MFU = achieved model FLOP/s (6N plus attention per token, lm/sizes.py `flops_per_token`, the
authors' formula, docs/PAPER.md §2.6) over the peak of the device. The peaks are the datasheets'
dense bf16 tensor-core figures (without 2:4 sparsity). A CPU has no datasheet figure that holds
(its peak moves with the clock and the kernels, docs/LOG.md 2026-11-26), so a CPU run logs its
FLOP/s and no MFU; so does a GPU not in the table.
"""

from __future__ import annotations

import torch

BF16_PEAK_TFLOPS = (
    # Most specific name first: "H100 PCIe" must not be read as the SXM card.
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("B200", 2250.0),
)
"""(a substring of torch.cuda.get_device_name, bf16 dense TFLOP/s)."""


def bf16_peak_tflops(device_name: str) -> float | None:
    """The peak of the first table entry whose name appears in `device_name`; None if none does."""
    for name, peak in BF16_PEAK_TFLOPS:
        if name in device_name:
            return peak
    return None


def device_peak_flops(device: torch.device) -> float | None:
    """FLOP/s of `device`'s bf16 peak, or None (a CPU, or a GPU the table does not know)."""
    if device.type != "cuda":
        return None
    peak = bf16_peak_tflops(torch.cuda.get_device_name(device))
    return None if peak is None else peak * 1e12
