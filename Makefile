# make demo: set up and run the main job (zero-shot segmenter, real clip, over ROS 2 topics)
# make test: set up and run the whole test suite (.ci/run: the same with AVS_TEST_STRICT=1)
# make setup: venv, dependencies and the assets (avs assets fetch --all; from ../shared/assets when present)
.PHONY: setup demo segment test bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/avs demo --out out/demo

segment: setup
	.venv/bin/avs segment $$(.venv/bin/avs assets path grace_hopper) --audio $$(.venv/bin/avs assets path speech) --out out/segment --max-windows 3

test: setup
	.venv/bin/python -m pytest test -q -p no:cacheprovider

bench: setup
	.venv/bin/python bench/bench_pipeline.py
