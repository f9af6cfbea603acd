"""ONNX Runtime: sessions, provider choice, the thread rule, and the served-model object routes call."""
