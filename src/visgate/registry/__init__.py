"""Plain data: the model spec registry, the GPU pool catalogue and GPU selection.
Imports domain/ only.
"""
