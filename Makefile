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
	.venv/bin/python -m bench asr
	.venv/bin/python -m bench listening
