"""Runs each configuration of a benchmark in its own process and gathers the results."""

from __future__ import annotations

import importlib
import json
import platform
import resource
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def memory() -> dict:
    """Resident memory now, split into anonymous (the heaps, arenas, caches) and file-backed
    (the mmapped model files and libraries, as far as they were touched), and the peak so far."""
    rollup = _kib_fields(Path("/proc/self/smaps_rollup").read_text())
    status = _kib_fields(Path("/proc/self/status").read_text())
    return {"rss_mb": round(rollup["Rss"] / 1024, 1), "anon_mb": round(rollup["Anonymous"] / 1024, 1),
            "file_mb": round((rollup["Rss"] - rollup["Anonymous"]) / 1024, 1),
            "peak_mb": round(status["VmHWM"] / 1024, 1)}


def _kib_fields(text: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()
            if line.endswith(" kB")}


def run_benchmark(name: str) -> int:
    name = name.replace("-", "_")  # `llm-models` is bench/llm_models.py
    module = importlib.import_module(f"bench.{name}")
    results = {}
    for configuration in module.CONFIGURATIONS:
        print(f"bench {name}: {configuration} ...", file=sys.stderr, flush=True)
        child = subprocess.run([sys.executable, "-m", "bench.runner", name, configuration],
                               capture_output=True, text=True)
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 1
        results[configuration] = json.loads(child.stdout.strip().splitlines()[-1])
    RESULTS.mkdir(exist_ok=True)
    report = {"benchmark": name, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpu_count": _cpus(), "machine": platform.machine(), "python": platform.python_version()},
              "results": results}
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(module.table(results))
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _child(name: str, configuration: str) -> None:
    import os

    # Keep native libraries' chatter off the JSON line on stdout.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    result = importlib.import_module(f"bench.{name}").measure(configuration)
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
