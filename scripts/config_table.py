"""The README's configuration table, generated from `Settings` so the two cannot drift.

`python scripts/config_table.py --write` (or `make config-table`) rewrites the block between
the markers in README.md and regenerates `.env.example`; a test fails when either is stale.
Without `--write` it prints the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
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
    lines = ["# Visgate Deploy settings (generated: python scripts/config_table.py --write)."]
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


README = Path(__file__).resolve().parents[1] / "README.md"


def main(
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite README.md's table and .env.example.")
    ] = False,
    readme: Annotated[Path, typer.Option(help="The README to update.")] = README,
) -> None:
    """Print the configuration table, or with --write bring README.md and .env.example up
    to date with `Settings`."""
    if not write:
        print(render())
        return
    changed = update(readme)
    env_example = readme.parent / ".env.example"
    if not env_example.exists() or env_example.read_text(encoding="utf-8") != render_env_example():
        env_example.write_text(render_env_example(), encoding="utf-8")
        changed = True
    print("updated" if changed else "up to date")


if __name__ == "__main__":
    typer.run(main)
