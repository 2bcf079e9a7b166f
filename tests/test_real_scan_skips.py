"""Where the real scans are absent, their tests skip saying which variable points at them and what it must hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, WAIT_S


def test_a_fresh_clone_is_told_how_to_point_the_tests_at_real_scans(tmp_path: Path) -> None:
    env = {**os.environ, "LGERISK_EMIDEC": str(tmp_path / "none"), "LGERISK_MYOPS": str(tmp_path / "none")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", "tests/preprocess/test_emidec.py",
         "tests/preprocess/test_scar_experts.py", "-k", "not doctest"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert result.returncode == 0 and skips, result.stdout[-2000:]
    emidec = [line for line in skips if "EMIDEC" in line]
    myops = [line for line in skips if "MyoPS" in line]
    assert emidec and myops and len(emidec) + len(myops) == len(skips)
    assert all(
        "set LGERISK_EMIDEC to the folder that holds EMIDEC's samplePositive/ and sampleNegative/" in line
        and str(tmp_path / "none") in line
        for line in emidec
    )
    assert all(
        "set LGERISK_MYOPS to the folder that holds MyoPS 2020's LGE scans as images/CaseNNNN.nii.gz" in line
        for line in myops
    )
