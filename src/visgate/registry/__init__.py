"""Plain data and pure functions: the model spec registry, the Runpod GPU pool catalogue and
GPU selection. Imports domain/ and the dataclasses of providers/base.py only.
"""
