"""Visgate Deploy: the control plane that turns a Hugging Face model id into a Runpod endpoint."""

__version__ = "0.1.0"
