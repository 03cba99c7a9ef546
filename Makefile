# Two entry points that do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean
# the tests that go through zennit's hooks and composites, run again on zennit 1.0.0
ZENNIT_TESTS := tests/families/centroids/test_centroid_rules.py tests/test_composites.py \
	tests/families/pipeline/test_pipeline.py tests/families/pipeline/test_tabular.py tests/families/mixture/test_mixture.py \
	tests/families/members/test_kernel_kmeans.py tests/families/members/test_partition.py tests/families/deep/test_deep.py \
	tests/families/pipeline/test_text.py tests/families/pipeline/test_whiten.py tests/families/mixture/test_mixture_projection.py \
	tests/families/members/test_member_projection.py \
	tests/test_startup.py \
	tests/families/spark/test_spark_models.py::test_cosine_network_zennit_path_agrees \
	tests/exporters/test_onnx_contrast.py::test_zennit_contrast_equals_onnx

COMPILED := $(wildcard zennit_clusters/compiled/*.c zennit_clusters/compiled/*.h zennit_clusters/families/*/*.c zennit_clusters/families/*/*.h)

# the editable install also compiles the C code (zennit_clusters/compiled, the k-means row step); it reruns when it changes
$(STAMP): pyproject.toml setup.py constraints.txt $(COMPILED)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# the suite on zennit 0.5.1 (what pip resolves on Python < 3.11.11), then the zennit-facing tests on 1.0.0
test: $(STAMP) $(VENV)/zennit1/zennit
	$(PY) -m pytest -q
	PYTHONPATH=$(VENV)/zennit1 $(PY) -m pytest -q $(ZENNIT_TESTS)

$(VENV)/zennit1/zennit: $(STAMP)
	$(PY) -m pip install -q --no-deps --ignore-requires-python --target $(VENV)/zennit1 zennit==1.0.0

# the benchmarks behind the README's tables; installs the peers (shap, captum, lime, skl2onnx) first
bench: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[bench]"
	$(PY) benchmarks/bench_explain.py
	$(PY) benchmarks/bench_onnx.py
	$(PY) benchmarks/bench_families_mixture.py
	$(PY) benchmarks/bench_families_kernel.py
	$(PY) benchmarks/bench_faithfulness.py
	$(PY) benchmarks/bench_text.py
	$(PY) benchmarks/bench_summary.py
	$(PY) benchmarks/bench_spark.py

clean:
	rm -rf $(VENV)
