"""docker-compose.yml, checked by reading it: Docker is never started here."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import AliasChoices

from pastools_jobs.config import Settings
from pastools_jobs.contracts import SEARCH_ATTRIBUTES

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
SERVICES = ["postgresql", "temporal", "temporal-admin-tools", "temporal-ui", "api", "worker"]
APP_SERVICES = ["api", "worker"]


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(compose, dict), f"{COMPOSE_FILE.name} is not a YAML mapping"
    found: dict[str, dict[str, Any]] = compose.get("services") or {}
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as `KEY=VALUE` items."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def accepted_env_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        else:
            names.add(f"PASTOOLS_{name.upper()}")
    return names


def host_of(address: str) -> str:
    """The host of `host:port` or of a URL such as `driver://user:secret@host:port/db`."""
    return address.rsplit("@", 1)[-1].split("://")[-1].split("/")[0].split(":")[0]


def test_compose_file_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    missing = [name for name in SERVICES if name not in services]
    assert not missing, f"docker-compose.yml has no service named {', '.join(missing)}"


def test_every_image_is_pinned_to_a_version(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"service {name} names no image"
        _, _, tag = image.rpartition(":")
        assert ":" in image and tag != "latest" and re.search(r"\d", tag), (
            f"service {name} uses image {image!r}, which is not pinned to a version tag"
        )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_is_read_by_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    unknown = sorted(set(map(str.upper, environment(services[name]))) - accepted_env_names())
    assert not unknown, f"service {name} sets {unknown}, which Settings never reads"


def test_admin_tools_register_every_search_attribute(services: dict[str, dict[str, Any]]) -> None:
    admin = services["temporal-admin-tools"]
    script = " ".join(
        " ".join(part) if isinstance(part, list) else str(part)
        for part in (admin.get("entrypoint", ""), admin.get("command", ""))
    )
    for attribute, kind in SEARCH_ATTRIBUTES.items():
        assert re.search(rf"--name\s+{attribute}\s+--type\s+{kind}\b", script), (
            f"temporal-admin-tools does not register search attribute {attribute} ({kind})"
        )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_points_at_the_compose_services(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment(services[name])
    temporal = env.get("PASTOOLS_TEMPORAL_ADDRESS", "")
    assert host_of(temporal) == "temporal", (
        f"service {name} reaches Temporal at {temporal!r}, not the `temporal` service"
    )
    database = env.get("DATABASE_URL") or env.get("PASTOOLS_DATABASE_URL", "")
    assert database.startswith("postgresql") and host_of(database) == "postgresql", (
        f"service {name} uses database {database!r}, not the `postgresql` service"
    )
    namespace = environment(services["temporal-admin-tools"]).get("TEMPORAL_NAMESPACE")
    assert env.get("PASTOOLS_TEMPORAL_NAMESPACE", "default") == namespace, (
        f"service {name} uses a Temporal namespace other than the one that "
        "temporal-admin-tools registers the search attributes in"
    )
