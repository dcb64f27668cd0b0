# The two commands of the README, and what they share.
.PHONY: setup run test bench

setup:
	scripts/setup

# Set up, then replay a fixture through the whole pipeline and speak the answer.
run: setup
	.venv/bin/assistant replay fixtures/wake_time.wav

test:
	scripts/test

bench: setup
	.venv/bin/python -m bench pipeline
	.venv/bin/python -m bench turns
	.venv/bin/python -m bench llm-models
	.venv/bin/python -m bench routing
	.venv/bin/python -m bench soak
	.venv/bin/python -m bench memory
	.venv/bin/python -m bench asr
	.venv/bin/python -m bench listening
	.venv/bin/python -m bench transcribe
	@# bench wake's voices: espeak-ng, from Debian's packages (installed when root)
	@command -v espeak-ng >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq --no-install-recommends espeak-ng >&2; } \
	  || { echo "bench wake needs espeak-ng (Debian: apt-get install espeak-ng)" >&2; exit 1; }
	.venv/bin/python -m bench wake
	.venv/bin/python -m bench household
	.venv/bin/python -m bench home
	.venv/bin/python -m bench serve
