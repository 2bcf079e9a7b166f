"""CPU execution settings of lgerisk.runtime: freed memory kept for reuse, torch threads."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch

from lgerisk.runtime import torch_threads

FAULTS = """
import os, resource, sys
import numpy as np
if sys.argv[1] == "reuse":
    from lgerisk.runtime import reuse_freed_memory
    assert reuse_freed_memory()
def resident():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
block = np.ones(8 << 20)  # 64 MB, like a network's activations: allocated, written, freed
del block
kept = resident()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block = np.ones(8 << 20)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults, kept)
"""


GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only (musl's mallopt does nothing)")
def test_freed_memory_is_kept_and_reused_instead_of_faulted_in_afresh() -> None:
    """Without the setting, a freed 64 MB block goes back to the system and the next one is faulted in
    afresh; with it, the freed block stays resident and the next ten reuse its pages."""

    def run(mode: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
        faults, resident = out.stdout.split()
        return int(faults), int(resident)

    default_faults, default_resident = run("default")
    reuse_faults, reuse_resident = run("reuse")
    assert reuse_resident > default_resident + (48 << 20)  # the freed block is still the process's
    assert default_faults > 3 * max(reuse_faults, 10)  # ... and the next blocks use it (huge pages: few faults)


def test_reuse_freed_memory_says_whether_it_applied() -> None:
    """In a process of its own: the setting would stay with the test session's."""
    code = "from lgerisk.runtime import reuse_freed_memory; print(reuse_freed_memory())"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(GLIBC)


def test_torch_threads_are_set_inside_and_restored_after() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("stopped")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
