"""ONNX interchange (placeholder on this branch: the export branch owns this file; the importer is
:mod:`pycnn.onnx.importer`)."""
