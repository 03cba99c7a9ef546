"""Exporters of neuralized clustering models.

``exporters.onnx`` writes a model, its cluster evidence and (optionally) its NEON explanation as an ONNX
graph and checks it under onnxruntime; ``exporters.loading`` reads model files without running code
hidden in them. Run ``python -m exporters.onnx --help`` for the command line.
"""
