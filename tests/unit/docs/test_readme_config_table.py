"""The README's configuration table is generated from the settings class: no drift."""

from pathlib import Path

from scripts.config_table import BEGIN, END, render, render_env_example

from visgate.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_table_matches_the_settings_class() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert block == render(), "run: python scripts/config_table.py --write"


def test_every_contract_env_is_a_setting() -> None:
    contract = {
        "STORE", "GCP_PROJECT_ID", "FIRESTORE_EMULATOR_HOST", "SECRETS", "RUNPOD_GRAPHQL_URL",
        "RUNPOD_API_BASE", "RUNPOD_API_KEY", "RUNPOD_TEMPLATE_IMAGE", "HF_ENDPOINT",
        "PUBLIC_BASE_URL", "INTERNAL_WEBHOOK_SECRET", "WEBHOOK_ALLOW_PRIVATE_URLS",
        "RATE_LIMIT_PER_MINUTE", "READY_TIMEOUT_SECONDS", "WEBHOOK_RETRY_SCHEDULE", "PROVIDER",
        "RUNPOD_API", "RUNPOD_REST_URL",
    }  # fmt: skip
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names |= {alias} if isinstance(alias, str) else set(getattr(alias, "choices", []))
    assert contract <= names


def test_env_example_lists_every_setting() -> None:
    assert (README.parent / ".env.example").read_text(encoding="utf-8") == render_env_example()
