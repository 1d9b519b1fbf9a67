"""docker-compose.yml, checked by reading it: Docker is never started here."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import AliasChoices

from pastools_jobs.config import Settings
from pastools_jobs.contracts import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = [
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "minio",
    "minio-buckets",
    "migrate",
    "api",
    "worker",
]
APP_SERVICES = ["migrate", "api", "worker"]
"""The services that run the platform's image, so read its Settings."""

# Read by the platform's processes without being Settings fields: boto3's credentials,
# S3 endpoint and region (AWS_REGION for the tools that use that name).
ENV_READ_BY_LIBRARIES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
}
# Settings fields on their way from another branch: drop each once Settings has it.
ENV_OF_PENDING_SETTINGS = {"PASTOOLS_STORAGE_URL"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = load_yaml(COMPOSE_FILE)
    found: dict[str, dict[str, Any]] = compose.get("services") or {}
    return found


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path.relative_to(ROOT)} is not a YAML mapping"
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as `KEY=VALUE` items."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def script_of(service: dict[str, Any]) -> str:
    return " ".join(
        " ".join(part) if isinstance(part, list) else str(part)
        for part in (service.get("entrypoint", ""), service.get("command", ""))
    )


def accepted_env_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        else:
            names.add(f"PASTOOLS_{name.upper()}")
    return names | ENV_READ_BY_LIBRARIES | ENV_OF_PENDING_SETTINGS


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


def test_temporal_images_are_one_generation(services: dict[str, dict[str, Any]]) -> None:
    """The server and the admin tools that set up its schema are the same release."""
    server = services["temporal"]["image"]
    assert server.startswith("temporalio/server:"), "temporal is not temporalio/server"
    version = server.rpartition(":")[2]
    for name in ("temporal-schema", "temporal-admin-tools"):
        assert services[name]["image"] == f"temporalio/admin-tools:{version}", (
            f"{name} runs {services[name]['image']}, not the admin tools of server {version}"
        )
    assert "temporal-schema" in services["temporal"].get("depends_on", {}), (
        "the Temporal server may start before its schema is set up"
    )


def test_accepted_env_names_still_refuse_unknown_ones() -> None:
    assert "PASTOOLS_FOO" not in accepted_env_names()
    assert "AWS_FOO" not in accepted_env_names()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_is_read_by_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    unknown = sorted(set(map(str.upper, environment(services[name]))) - accepted_env_names())
    assert not unknown, f"service {name} sets {unknown}, which Settings never reads"


def test_admin_tools_register_every_search_attribute(services: dict[str, dict[str, Any]]) -> None:
    script = script_of(services["temporal-admin-tools"])
    assert "namespace create" in script, "temporal-admin-tools does not create the namespace"
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
    assert host_of(env.get("AWS_ENDPOINT_URL_S3", "")) == "minio", (
        f"service {name} does not store its files in the `minio` service"
    )


def test_the_storage_bucket_is_created(services: dict[str, dict[str, Any]]) -> None:
    creation = script_of(services["minio-buckets"])
    for name in ("api", "worker"):
        url = environment(services[name]).get("PASTOOLS_STORAGE_URL", "")
        assert url.startswith("s3://"), f"service {name} does not store its files in S3"
        bucket = url.removeprefix("s3://").split("/")[0]
        assert re.search(rf"mc mb\b[^\n]*/{re.escape(bucket)}\b", creation), (
            f"minio-buckets does not create bucket {bucket}, which {name} writes to"
        )


def test_the_api_and_the_worker_have_several_replicas(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        replicas = services[name].get("deploy", {}).get("replicas", 1)
        assert replicas >= 2, f"service {name} runs {replicas} replica(s)"
    for port in services["api"].get("ports", []):
        published = str(port).rsplit(":", 1)[0].split(":")[-1]
        if "-" in published:
            low, high = map(int, published.split("-"))
            assert high - low + 1 >= services["api"]["deploy"]["replicas"], (
                f"api publishes {published}: fewer host ports than replicas"
            )
        else:
            pytest.fail(f"api publishes the fixed host port {published}, which replicas fight for")
