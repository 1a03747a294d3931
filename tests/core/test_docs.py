"""The configuration page documents every variable the core settings read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READERS = re.compile(r"(?:env\.\w+|\.string)\(\s*\"([A-Z][A-Z0-9_]+)\"")


def core_settings_variables() -> set[str]:
    text = (ROOT / "coreadmin" / "settings.py").read_text()
    core = re.split(r"^# --- ", text, maxsplit=1, flags=re.MULTILINE)[0]  # app blocks follow
    return set(READERS.findall(core))


def test_every_core_setting_is_documented_in_configuration_md():
    variables = core_settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ENCRYPTION_KEYS"} <= variables
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(v for v in variables if f"`{v}`" not in documented)
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_readme_links_the_architecture_and_configuration_pages():
    readme = (ROOT / "README.md").read_text()
    for page in ("docs/architecture.md", "docs/configuration.md"):
        assert f"]({page})" in readme
        assert (ROOT / page).exists()


def test_the_api_guide_documents_every_endpoint_of_the_schema():
    from coreadmin.api import api

    guide = (ROOT / "docs" / "api-guide.md").read_text()
    endpoints = [
        f"`{method.upper()} {path}`"
        for path, methods in api.get_openapi_schema()["paths"].items()
        for method in methods
    ]
    assert len(endpoints) > 30
    missing = [e for e in endpoints if e not in guide]
    assert not missing, f"not in docs/api-guide.md: {missing}"


def test_the_api_guides_python_examples_compile():
    guide = (ROOT / "docs" / "api-guide.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    assert len(blocks) >= 8
    for block in blocks:
        compile(block, "docs/api-guide.md", "exec")
