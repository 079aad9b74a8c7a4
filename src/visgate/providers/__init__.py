"""GPU providers: the `GpuProvider` protocol (base.py) and its backends (runpod/, local/).

Backends import from domain/ only; the reconciler imports base.py, never a backend.
"""
