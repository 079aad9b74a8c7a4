"""Where user secrets live: the `SecretStore` protocol (base), `local` (Fernet in SQLite),
`secret_manager` (Google Secret Manager), `factory`, and `references` (operator settings given
as `sm://` refs). Imports domain/ only; nothing outside imports a backend but the factory.
"""
