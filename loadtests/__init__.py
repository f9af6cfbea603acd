"""Load tests (locust scenarios, a headless SLO runner) and the benchmark against raw ONNX Runtime."""
