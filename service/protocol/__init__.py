"""Wire formats, free of routing: Open Inference Protocol v2 (with binary tensors) and v1 :predict."""
