"""Who may call: API keys for clients (api_keys.py) and the per-deployment callback tokens
that workers present (callback_tokens.py)."""
