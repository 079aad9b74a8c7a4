"""The Runpod worker image's code: settings, model adapters, the 3D pipeline and the job handler.

Imports only its own modules and the worker's libraries (torch, diffusers, transformers, runpod),
never the control plane package `visgate`. Entry points: `main` (Runpod), `local` (PROVIDER=local).
"""
