"""Process memory, for run summaries and benchmarks.

Example:
    >>> peak_rss_mb() > 0
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
