"""The README's configuration table, generated from `Settings` so the two cannot drift.

`python -m visgate.config_table --write` rewrites the block between the markers in
README.md; a test fails when the README is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr

from visgate.settings import Settings

BEGIN = "<!-- config-table:begin -->"
END = "<!-- config-table:end -->"


def _default(field: object) -> str:
    default = getattr(field, "default", None)
    factory = getattr(field, "default_factory", None)
    if factory is not None:
        default = factory()
    if default is None:
        return "—"
    if isinstance(default, SecretStr):
        return "—"
    if isinstance(default, list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    if hasattr(default, "value"):
        return str(default.value)
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def render() -> str:
    rows = ["| env | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{_env_name(name)}` | `{_default(field)}` | {field.description or ''} |")
    return "\n".join(rows)


def _env_name(name: str) -> str:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, str):
        return alias
    return str(alias.choices[0]) if alias else name.upper()  # type: ignore[union-attr]


def render_env_example() -> str:
    """`.env.example`: every setting with its meaning and a safe default (secrets empty)."""
    lines = ["# Visgate Deploy settings (generated: python -m visgate.config_table --write)."]
    for name, field in Settings.model_fields.items():
        value = _default(field)
        lines += [
            f"# {field.description or ''}",
            f"{_env_name(name)}={'' if value == '—' else value}",
        ]
    return "\n".join(lines) + "\n"


def update(readme: Path) -> bool:
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + render() + "\n" + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
        return True
    return False


if __name__ == "__main__":
    path = Path(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    changed = False
    if "--write" in sys.argv:
        changed = update(path)
        env_example = path.parent / ".env.example"
        if not env_example.exists() or env_example.read_text() != render_env_example():
            env_example.write_text(render_env_example(), encoding="utf-8")
            changed = True
    print(render() if "--write" not in sys.argv else ("updated" if changed else "up to date"))
