"""`nnserve-train fit`: train a model on the user's own data (see docs/training.md, "Your own data").

data source (sources, tables, images, corpus) -> split -> task preprocessing -> architecture ->
the shared training loop -> export with parity -> baseline -> card, metrics, config -> atomic publish.
Each task is one module under `training.fit.tasks`, found through `training.fit.tasks.TASKS`.
"""
