"""Where user secrets live: the `SecretStore` protocol (base.py), `local` (Fernet on disk)
and `secret_manager` (Google Secret Manager). Imports domain/ only.
"""
