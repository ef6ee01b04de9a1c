"""What the video benchmarks share: the 1080p clips they run on, where the data is, and how rates are reported.

Rates are given on the wall clock and per CPU-second (frames / CPU time of the process and its threads), which
does not depend on other jobs sharing the cores.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the 1920x1080, 30 fps NTU RGB+D clips of shared/data/videos (one H.264, four MPEG-4 Part 2 / DivX, pyskl's H.264)
CLIPS = ("S001C001P001R001A001_rgb.avi", "S004C002P003R001A055_rgb.avi", "S004C002P003R002A046_rgb.avi",
         "S004C003P003R001A006_rgb.avi", "S004C003P003R001A007_rgb.avi", "pyskl_ntu_sample.avi")


def data_root() -> Path:
    env = os.environ.get("SKELACT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def cpu_seconds(children: bool = False) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rates(frames: int, wall: float, cpu: float, digits: int = 2) -> dict[str, float]:
    return {"frames": frames, "wall_s": round(wall, digits), "fps": round(frames / wall, 1),
            "cpu_s": round(cpu, digits), "fps_per_cpu_second": round(frames / cpu, 1) if cpu > 0 else None,
            "cores_busy": round(cpu / wall, 2)}
