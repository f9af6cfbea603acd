"""The model repository format: the bottom layer that runtime, batching, tasks and training all read.

It imports nothing else from `service/`, so every other folder may depend on it without a loop.
"""
