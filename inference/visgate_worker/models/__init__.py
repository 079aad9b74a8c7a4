"""Model adapters behind one interface (`ManagedModel`): the diffusers text-to-image pipeline,
PartCrafter, Hunyuan3D-2, Grounded SAM 2 and the demo stand-ins; where weights come from.

May import torch, diffusers, transformers, trimesh and the worker's own base modules; upstream
packages that are not on PyPI (PartCrafter) or heavy (hy3dgen) are imported only inside `load`.
"""
