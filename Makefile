# make demo: set up and run the main job (zero-shot segmenter, real clip, over ROS 2 topics)
# make test: set up and run the whole test suite
.PHONY: setup demo segment test bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/avs demo --out out/demo

segment: setup
	.venv/bin/avs segment ../shared/assets/images/grace_hopper.bmp --audio ../shared/assets/audio_samples/speech.wav --out out/segment --max-windows 3

test: setup
	.venv/bin/python -m pytest test -q -p no:cacheprovider

bench: setup
	.venv/bin/python bench/bench_pipeline.py
