"""docker-compose.yml and the files it mounts (Prometheus, Grafana), checked by reading
them: Docker is never started here."""

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AliasChoices

from pastools_jobs import metrics
from pastools_jobs.config import Settings
from pastools_jobs.contracts import SEARCH_ATTRIBUTES
from pastools_jobs.devserver import FAIRNESS_DYNAMIC_CONFIG

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
    "prometheus-token",
    "prometheus",
    "grafana",
]
APP_SERVICES = ["migrate", "api", "worker", "prometheus-token"]
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

# The Temporal SDK's metrics, as the worker's exporter names them (temporalio 1.35, the
# PrometheusConfig defaults: no `_total`, no unit suffix, durations in milliseconds).
SDK_COUNTERS = {
    "temporal_workflow_completed",
    "temporal_workflow_failed",
    "temporal_workflow_canceled",
    "temporal_workflow_continue_as_new",
    "temporal_workflow_task_queue_poll_empty",
    "temporal_workflow_task_queue_poll_succeed",
    "temporal_workflow_task_execution_failed",
    "temporal_activity_poll_no_task",
    "temporal_activity_task_received",
    "temporal_activity_execution_failed",
    "temporal_sticky_cache_hit",
    "temporal_sticky_cache_miss",
    "temporal_worker_start",
}
SDK_GAUGES = {
    "temporal_num_pollers",
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
    "temporal_sticky_cache_size",
}
SDK_HISTOGRAMS = {
    "temporal_workflow_endtoend_latency",
    "temporal_workflow_task_schedule_to_start_latency",
    "temporal_workflow_task_execution_latency",
    "temporal_workflow_task_replay_latency",
    "temporal_activity_schedule_to_start_latency",
    "temporal_activity_execution_latency",
    "temporal_activity_succeed_endtoend_latency",
}
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
METRIC_NAME = re.compile(r"\b(?:pastools|temporal)_[a-z0-9_]+")


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


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's volumes, short syntax, as {target: source}."""
    found: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        source, target, *_ = str(volume).split(":")
        found[target] = source
    return found


def repo_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file or directory a bind mount shows at `container_path`."""
    wanted = PurePosixPath(container_path)
    for target, source in mounts(service).items():
        if source.startswith(".") and wanted.is_relative_to(target):
            return ROOT / source / wanted.relative_to(target)
    return None


def volume_at(service: dict[str, Any], container_path: str) -> str | None:
    """The named volume that holds `container_path` in `service`."""
    wanted = PurePosixPath(container_path)
    for target, source in mounts(service).items():
        if not source.startswith((".", "/")) and wanted.is_relative_to(target):
            return source
    return None


def accepted_env_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        else:
            names.add(f"PASTOOLS_{name.upper()}")
    return names | ENV_READ_BY_LIBRARIES


def host_of(address: str) -> str:
    """The host of `host:port` or of a URL such as `driver://user:secret@host:port/db`."""
    return address.rsplit("@", 1)[-1].split("://")[-1].split("/")[0].split(":")[0]


def platform_metric_names() -> set[str]:
    """Every sample name pastools_jobs.metrics exports: its metric objects, with the
    suffixes prometheus_client gives each type, and the gauges its collector builds."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
    source = Path(metrics.__file__).read_text()
    names.update(re.findall(r'GaugeMetricFamily\(\s*"(\w+)"', source))
    return names


def sdk_metric_names() -> set[str]:
    return (
        SDK_COUNTERS
        | SDK_GAUGES
        | {name + suffix for name in SDK_HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
    )


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


def test_every_file_mounted_from_the_repository_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    compose = load_yaml(COMPOSE_FILE)
    sources = [
        config["file"] for config in (compose.get("configs") or {}).values() if "file" in config
    ]
    for service in services.values():
        sources.extend(source for source in mounts(service).values() if source.startswith("."))
    missing = sorted(source for source in sources if not (ROOT / source).exists())
    assert not missing, f"docker-compose.yml mounts {missing}, which the repository lacks"


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


def test_the_server_dispatches_fairly_as_the_dev_server_does(
    services: dict[str, dict[str, Any]],
) -> None:
    """The dynamic config the temporal service reads switches fairness on with the same keys
    and values as `pastools up`'s dev server."""
    compose = load_yaml(COMPOSE_FILE)
    [mounted] = [
        config["source"]
        for config in services["temporal"]["configs"]
        if config["target"] == services["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    ]
    dynamic = load_yaml(ROOT / compose["configs"][mounted]["file"])
    for key, value in FAIRNESS_DYNAMIC_CONFIG.items():
        assert dynamic.get(key) == [{"value": json.loads(value), "constraints": {}}], (
            f"the compose server's dynamic config does not set {key} to {value}"
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


def scrape_jobs() -> dict[str, dict[str, Any]]:
    config = load_yaml(ROOT / "deploy/prometheus/prometheus.yml")
    return {job["job_name"]: job for job in config.get("scrape_configs") or []}


def scraped_ports(service: str) -> dict[int, dict[str, Any]]:
    """The ports of `service` that a job finds by its DNS name, with that job."""
    found: dict[int, dict[str, Any]] = {}
    for job in scrape_jobs().values():
        for discovery in job.get("dns_sd_configs") or []:
            if service in discovery.get("names", []):
                found[int(discovery["port"])] = job
    return found


def test_prometheus_scrapes_every_api_replica_with_a_token(
    services: dict[str, dict[str, Any]],
) -> None:
    api_port = int(environment(services["api"])["PASTOOLS_API_PORT"])
    job = scraped_ports("api").get(api_port)
    assert job is not None, f"no Prometheus job finds the api replicas on port {api_port}"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    token_file = job.get("authorization", {}).get("credentials_file")
    assert token_file, "Prometheus scrapes /metrics without a token, which it requires"
    volume = volume_at(services["prometheus"], token_file)
    assert volume, f"Prometheus reads {token_file} from no volume"
    writer = services["prometheus-token"]
    assert volume_at(writer, token_file) == volume, (
        f"prometheus-token does not write into volume {volume}, where Prometheus reads"
    )
    assert "tokens create --role admin" in script_of(writer), (
        "prometheus-token does not create an admin token (/metrics refuses the others)"
    )
    assert PurePosixPath(token_file).name in script_of(writer)


def test_prometheus_scrapes_both_worker_metrics_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["worker"])
    assert env.get("PASTOOLS_METRICS_HOST") == "0.0.0.0", (
        "the worker's metrics ports listen on its loopback only: Prometheus cannot reach them"
    )
    ports = scraped_ports("worker")
    for variable in ("PASTOOLS_WORKER_METRICS_PORT", "PASTOOLS_WORKER_SDK_METRICS_PORT"):
        assert variable in env, f"the worker sets no {variable}"
        assert int(env[variable]) in ports, f"Prometheus does not scrape the worker's {variable}"
    mounted = repo_path(services["prometheus"], "/etc/prometheus/prometheus.yml")
    assert mounted == ROOT / "deploy/prometheus/prometheus.yml"


def grafana_provisioning(services: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    directory = repo_path(services["grafana"], f"/etc/grafana/provisioning/{kind}")
    assert directory is not None and directory.is_dir(), f"Grafana is given no {kind}"
    return [load_yaml(path) for path in sorted(directory.glob("*.y*ml"))]


def dashboards(services: dict[str, dict[str, Any]]) -> list[Path]:
    found: list[Path] = []
    for provisioning in grafana_provisioning(services, "dashboards"):
        for provider in provisioning.get("providers") or []:
            path = provider["options"]["path"]
            directory = repo_path(services["grafana"], path)
            assert directory is not None and directory.is_dir(), (
                f"dashboard provider {provider['name']} loads {path}, which no "
                "repository directory is mounted on"
            )
            found.extend(sorted(directory.glob("*.json")))
    return found


def test_grafana_reads_prometheus_and_the_dashboards(services: dict[str, dict[str, Any]]) -> None:
    sources = [
        source
        for provisioning in grafana_provisioning(services, "datasources")
        for source in provisioning.get("datasources") or []
    ]
    prometheus = [source for source in sources if source.get("type") == "prometheus"]
    assert prometheus, "Grafana is given no Prometheus data source"
    assert host_of(prometheus[0]["url"]) == "prometheus", "Grafana's Prometheus is elsewhere"
    uids = {source.get("uid") for source in prometheus}
    found = dashboards(services)
    assert found, "no dashboard JSON is provisioned"
    for path in found:
        for panel in panels_of(json.loads(path.read_text())):
            source = panel.get("datasource")
            if isinstance(source, dict):
                assert source.get("uid") in uids, (
                    f"{path.name}: panel {panel.get('title')!r} reads data source "
                    f"{source.get('uid')!r}, which is not provisioned"
                )


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels") or []:
        found.append(panel)
        found.extend(panel.get("panels") or [])  # a collapsed row holds its panels
    return found


def test_dashboards_chart_only_metrics_that_are_exported(
    services: dict[str, dict[str, Any]],
) -> None:
    known = platform_metric_names() | sdk_metric_names()
    charted: set[str] = set()
    for path in dashboards(services):
        for panel in panels_of(json.loads(path.read_text())):
            for target in panel.get("targets") or []:
                expr = target.get("expr", "")
                names = set(METRIC_NAME.findall(expr))
                assert names, f"{path.name}: {panel['title']!r} charts no platform or SDK metric"
                unknown = sorted(names - known)
                assert not unknown, (
                    f"{path.name}: {panel['title']!r} charts {unknown}, which neither "
                    "pastools_jobs.metrics nor the Temporal SDK exports"
                )
                charted |= names
    # Every metric the platform defines is on the dashboard, in one form or another.
    bases = {re.sub(r"_(total|bucket|sum|count|created)$", "", name) for name in charted}
    for name in platform_metric_names():
        base = re.sub(r"_(total|bucket|sum|count|created)$", "", name)
        assert base in bases, f"the dashboard has no panel for {base}"
