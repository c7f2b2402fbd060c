"""Process memory, for run summaries and benchmarks.

Example:
    >>> peak_rss_mb() > 0
    True
    >>> peak_gpu_mb("cpu") is None
    True
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Linux's ``VmHWM``, which starts afresh at exec; ``getrusage``'s ``ru_maxrss`` keeps the peak of
    the process that forked this one (a 1.6 GB parent made a small child report 1.5 GB), so it is
    only the fallback where ``/proc`` is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_gpu_mb(device: str) -> float | None:
    """Peak GPU memory PyTorch's allocator held in this process, in MB; None where ``device`` is no CUDA GPU.

    The allocator's reserved memory (its cache included: what the card gave the process), without the
    CUDA context itself, which the driver takes besides (a few hundred MB).
    """
    if not device.startswith("cuda"):
        return None
    import torch

    return round(torch.cuda.max_memory_reserved(torch.device(device)) / 2**20, 1)
