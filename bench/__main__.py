import sys

from .runner import run_benchmark

if len(sys.argv) != 2:
    sys.exit("usage: python -m bench NAME   (NAME: pipeline, turns, routing, llm-models, soak, memory, asr, listening, transcribe, wake, wake-tune, household, home)")
sys.exit(run_benchmark(sys.argv[1]))
