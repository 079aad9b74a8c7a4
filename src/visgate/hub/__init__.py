"""Hugging Face validation and VRAM estimate: is this model servable, by whom, and on how
much GPU memory. Imports domain/, registry/ and `visgate.kit` only (plus
huggingface_hub and tenacity).
"""

from visgate.hub.validator import HubValidator, ModelCheck

__all__ = ["HubValidator", "ModelCheck"]
