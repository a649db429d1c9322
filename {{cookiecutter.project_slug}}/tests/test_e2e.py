"""End to end, with the real components: ``dvc repro`` in a git copy of the project, a real MLflow tracking server
and model registry, and DVC remotes in a local folder and in an S3-compatible server (moto).

The pipeline is reproduced once per session (see ``reproduced`` in conftest.py) and every test here reads it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from conftest import BIN, PACKAGE, Reproduced, free_port, git, run, tracked_outputs

from {{ cookiecutter.package_name }}.contracts.io import read_json
from {{ cookiecutter.package_name }}.pipeline.tracking import SOURCE_RUN_TAG, SOURCE_STORE_TAG, flatten

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

pytestmark = pytest.mark.slow
# What `dvc status` says with nothing to do: the stage tracking-target runs on every repro by design (it records the
# tracking URI, from the environment, which DVC cannot see).
NOTHING_TO_DO = {"tracking-target": ["always changed"]}
# What the release workflow reads from `make register` (release.yml, step `register`).
REGISTERED = re.compile(r"^registered .* version ([0-9][0-9]*) as .*$", re.MULTILINE)
# Variables under which DVC or MLflow keep quiet by themselves (their off-switches, and the CI and test markers that
# MLflow's telemetry and DVC's update check look for): removed, so that the project's own settings are what is tested.
QUIETING = (
    "DVC_NO_ANALYTICS",
    "DVC_TEST",
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "PYTEST_CURRENT_TEST",
    "CI",
    "GITHUB_ACTIONS",
    "CIRCLECI",
    "GITLAB_CI",
    "JENKINS_URL",
    "TRAVIS",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "CODEBUILD_BUILD_ARN",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "CLOUD_RUN_EXECUTION",
)
SOCKADDR = re.compile(
    r'sa_family=AF_INET6?, sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")'
)


def test_pipeline_ran_every_stage(reproduced: Reproduced) -> None:
    stages = yaml.safe_load((reproduced.root / "dvc.yaml").read_text())["stages"]

    for stage in stages:
        assert f"Running stage '{stage}'" in reproduced.output, stage
    settings = reproduced.params
    for path in (settings.paths.metrics, settings.paths.verdict, settings.paths.run, settings.paths.report):
        assert (reproduced.root / path).is_file(), path
    assert (reproduced.root / "dvc.lock").is_file()


def test_run_is_tracked_and_registered_in_mlflow(reproduced: Reproduced) -> None:
    from mlflow import MlflowClient  # imported here: collecting the fast tests should not pay for it

    root, settings = reproduced.root, reproduced.params
    record = read_json(root / settings.paths.run)
    verdict = read_json(root / settings.paths.verdict)
    client = MlflowClient(tracking_uri=reproduced.tracking_uri)

    assert record["tracking_uri"] == reproduced.tracking_uri
    assert record["url"].startswith(f"{reproduced.tracking_uri}/#/experiments/{record['experiment_id']}/runs/")
    run_ = client.get_run(record["run_id"])
    assert client.get_experiment(run_.info.experiment_id).name == settings.mlflow.experiment

    # params: every setting but the paths, flattened
    raw_params = yaml.safe_load((root / "params.yaml").read_text())
    expected_params = {k: str(v) for k, v in flatten(raw_params).items() if not k.startswith("paths.")}
    assert run_.data.params == expected_params

    # metrics: the test-set metrics (the model's, and the naive baseline's prefixed), parity and latency
    scores = read_json(root / settings.paths.metrics)
    for name, value in scores["model"].items():
        assert run_.data.metrics[name] == pytest.approx(value), name
    for name, value in scores["naive_baseline"]["metrics"].items():
        assert run_.data.metrics[f"naive_baseline.{name}"] == pytest.approx(value), name
    assert run_.data.metrics["parity.max_diff"] == pytest.approx(read_json(root / settings.paths.parity)["max_diff"])
    timings = read_json(root / settings.paths.timings)  # untracked: not in the verdict, which stays deterministic
    assert run_.data.metrics["latency.p99_ms"] == pytest.approx(timings["p99_ms"])

    # lineage tags: the commit that ran and the DVC hash of the raw data
    dvc_file = root / settings.paths.raw.with_name(settings.paths.raw.name + ".dvc")
    raw_md5 = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    tags = run_.data.tags
    assert tags["git.commit"] == reproduced.commit
    assert tags["data.raw.dvc_md5"] == raw_md5
    assert tags["data.raw.md5"] == raw_md5
    assert tags["gate.passed"] == str(verdict["passed"]).lower()
    artifacts = {Path(a.path).name for a in client.list_artifacts(run_.info.run_id, "pipeline")}
    assert {settings.paths.metadata.name, settings.paths.verdict.name, settings.paths.schema_.name} <= artifacts

    # register: a new version of the registered model, with the alias pointing at this run
    # (a gate that fails on the project's real data is the data's business, not this test's)
    flags = [] if verdict["passed"] else ["--allow-failed-gate"]
    result = reproduced.run(BIN / PACKAGE, "register", "--alias", "challenger", *flags)
    assert f"registered {settings.mlflow.registered_model} version " in result.stdout
    version = client.get_model_version_by_alias(settings.mlflow.registered_model, "challenger")
    assert version.run_id == record["run_id"]
    assert f"version {version.version} as @challenger" in result.stdout
    assert version.tags["git.commit"] == reproduced.commit
    assert version.tags["data.raw.dvc_md5"] == raw_md5


def test_register_in_another_store_logs_the_run_there(pushed: Reproduced, tmp_path: Path) -> None:
    """What the release job does: the outputs come from the DVC remote, the run they record is in another store (here
    the session's server; the job's store is a fresh SQLite one, as without the MLFLOW_TRACKING_URI variable)."""
    from mlflow import MlflowClient

    root, settings = pushed.root, pushed.params
    record = read_json(root / settings.paths.run)
    recorded_bytes = (root / settings.paths.run).read_bytes()
    head = git(root, "rev-parse", "HEAD")
    flags = [] if read_json(root / settings.paths.verdict)["passed"] else ["--allow-failed-gate"]
    store = f"sqlite:///{tmp_path / 'release.db'}"
    env = {**pushed.env, "MLFLOW_TRACKING_URI": store}

    first = pushed.run(BIN / PACKAGE, "register", "--alias", "challenger", *flags, env=env)
    second = pushed.run(BIN / PACKAGE, "register", "--alias", "challenger", *flags, env=env)

    assert REGISTERED.findall(first.stdout) == ["1"], first.stdout
    assert REGISTERED.findall(second.stdout) == ["2"], second.stdout
    assert f"run {record['run_id']} (tracked in {pushed.tracking_uri}) is not in {store}" in first.stdout
    client = MlflowClient(tracking_uri=store)
    name = settings.mlflow.registered_model
    v1, v2 = client.get_model_version(name, "1"), client.get_model_version(name, "2")
    assert v1.run_id == v2.run_id != record["run_id"]
    tags = client.get_run(v1.run_id).data.tags
    original = MlflowClient(tracking_uri=pushed.tracking_uri).get_run(record["run_id"]).data.tags
    assert tags[SOURCE_RUN_TAG] == record["run_id"]
    assert tags[SOURCE_STORE_TAG] == pushed.tracking_uri
    assert tags["git.commit"] == head, "the stand-in run records the commit being registered"
    for tag in ("data.raw.dvc_md5", "data.raw.md5", "data.train.md5", "model.onnx.md5", "gate.passed"):
        assert tags[tag] == original[tag] == v1.tags[tag], tag
    # the pipeline is untouched: the run record (a DVC output) is as the track stage left it, nothing to reproduce
    assert (root / settings.paths.run).read_bytes() == recorded_bytes
    assert json.loads(pushed.run(BIN / "dvc", "status", "--json").stdout) == NOTHING_TO_DO
    assert not git(root, "status", "--porcelain")


def test_register_logs_again_a_run_the_server_lost(reproduced: Reproduced, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    copy = tmp_path / "copy"
    shutil.copytree(reproduced.root, copy, ignore=shutil.ignore_patterns(".git", ".dvc"))
    settings = reproduced.params
    record = read_json(copy / settings.paths.run)
    lost = uuid.uuid4().hex
    (copy / settings.paths.run).write_text(json.dumps({**record, "run_id": lost}))
    flags = [] if read_json(copy / settings.paths.verdict)["passed"] else ["--allow-failed-gate"]

    result = run([BIN / PACKAGE, "register", "--alias", "stand-in", *flags], copy, reproduced.env)

    uri = reproduced.tracking_uri
    assert f"run {lost} (tracked in {uri}) is not in {uri}: registering run " in result.stdout
    client = MlflowClient(tracking_uri=uri)
    version = client.get_model_version_by_alias(settings.mlflow.registered_model, "stand-in")
    assert REGISTERED.findall(result.stdout) == [str(version.version)]
    assert version.run_id != record["run_id"]
    assert version.tags[SOURCE_RUN_TAG] == lost
    assert client.get_run(version.run_id).data.tags[SOURCE_STORE_TAG] == uri


def test_register_json_keeps_stdout_for_the_json_with_a_server(reproduced: Reproduced, tmp_path: Path) -> None:
    """MLflow writes links to the runs it logs on stdout when the store is a server: ``--json`` keeps them off it."""
    copy = tmp_path / "copy"
    shutil.copytree(reproduced.root, copy, ignore=shutil.ignore_patterns(".git", ".dvc"))
    settings = reproduced.params
    record = read_json(copy / settings.paths.run)
    lost = uuid.uuid4().hex  # a run the server does not have: register logs a stand-in run there
    (copy / settings.paths.run).write_text(json.dumps({**record, "run_id": lost}))
    flags = [] if read_json(copy / settings.paths.verdict)["passed"] else ["--allow-failed-gate"]

    result = run([BIN / PACKAGE, "register", "--alias", "json", "--json", *flags], copy, reproduced.env)

    registered = json.loads(result.stdout)
    assert registered["name"] == settings.mlflow.registered_model
    assert registered["alias"] == "json"
    assert registered["stand_in"].startswith(f"run {lost} (tracked in {reproduced.tracking_uri}) is not in ")
    assert "View run" in result.stderr, "MLflow's link went to stderr"


def _leaving(trace: str) -> list[str]:
    """The calls in an strace log that reach past this machine: an address off loopback, or a DNS lookup."""
    found = []
    for line in trace.splitlines():
        match = SOCKADDR.search(line)
        if match:
            port, v4, v6 = match.groups()
            address = ipaddress.ip_address(v4 or v6)
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            if port == "53" or not (address.is_loopback or (mapped is not None and mapped.is_loopback)):
                found.append(line)
    return found


def test_the_strace_filter_tells_loopback_from_the_rest() -> None:
    v6 = 'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "{}", &sin6_addr), sin6_scope_id=0}}, 28)'
    trace = [
        'connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT',
        'connect(5, {sa_family=AF_INET, sin_port=htons(5000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        "connect(5, {sa_family=AF_INET6, sin6_port=htons(5000), " + v6.format("::1") + " = 0",
        "connect(5, {sa_family=AF_INET6, sin6_port=htons(5000), " + v6.format("::ffff:127.0.0.1") + " = 0",
        'connect(5, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.2")}, 16) = 0',
        'connect(5, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
        "connect(7, {sa_family=AF_INET6, sin6_port=htons(443), " + v6.format("2001:db8::1") + " = -1 ENETUNREACH",
        'sendto(8, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("192.0.2.1")}, 16) = 1',
    ]

    assert _leaving("\n".join(trace)) == trace[4:]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (Debian, Ubuntu: apt-get install strace)")
def test_nothing_leaves_the_machine(pushed: Reproduced, tmp_path: Path) -> None:
    """DVC and MLflow as the project runs them (dvc, make, the CLI) connect to nothing but this machine: no usage
    analytics, telemetry or update checks. strace sees every attempt, whether or not a network answers it."""
    copy = tmp_path / pushed.root.name
    shutil.copytree(pushed.root, copy, symlinks=True, ignore=shutil.ignore_patterns("mlruns", "mlartifacts"))
    params = copy / "params.yaml"
    experiment = f"experiment: {pushed.params.mlflow.experiment}"
    params.write_text(params.read_text().replace(experiment, f"{experiment}-strace"))  # so the track stage runs
    env = {k: v for k, v in pushed.env.items() if k not in QUIETING}  # the tracking URI stays: the local server
    flags = [] if read_json(copy / pushed.params.paths.verdict)["passed"] else ["--allow-failed-gate"]
    commands: list[list[str | Path]] = [
        [BIN / "dvc", "status"],
        ["make", "repro", "UV_RUN="],  # the Makefile's environment; dvc and the CLI from the virtualenv (PATH)
        [BIN / PACKAGE, "register", "--alias", "challenger", *flags],
        [BIN / "dvc", "push"],
    ]
    output, leaving = "", {}
    for number, command in enumerate(commands):
        log = tmp_path / f"strace-{number}.log"
        strace = ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "signal=none", "-o", log]
        result = run([*strace, "-e", "trace=connect,sendto,sendmsg,sendmmsg", "--", *command], copy, env, timeout=900)
        output += result.stdout
        leaving[" ".join([Path(command[0]).name, *map(str, command[1:2])])] = _leaving(log.read_text())

    assert "Running stage 'track'" in output, output
    assert "registered " in output, output
    assert leaving == {command: [] for command in leaving}, "connections that leave the machine"


def _round_trip(
    project: Reproduced, clone: Path, remote_config: dict[str, str], env: dict[str, str] | None = None
) -> None:
    """Push the project to a remote, clone it with git, pull it with DVC, and check the clone has nothing to do."""
    env = env or project.env
    dvc = BIN / "dvc"
    (project.root / ".dvc" / "config.local").unlink(missing_ok=True)  # the other remote test's settings
    for key, value in remote_config.items():
        run([dvc, "remote", "modify", "--local", "storage", key, value], project.root, env)
    pushed = run([dvc, "push"], project.root, env)
    assert "pushed" in pushed.stdout

    run(["git", "clone", "--quiet", project.root, clone], clone.parent, env)
    settings = project.params
    assert not (clone / settings.paths.raw).exists()
    assert not (clone / settings.paths.onnx).exists()
    for key, value in remote_config.items():
        run([dvc, "remote", "modify", "--local", "storage", key, value], clone, env)
    run([dvc, "pull"], clone, env)

    assert tracked_outputs(clone, settings) == tracked_outputs(project.root, settings)
    assert json.loads(run([dvc, "status", "--json"], clone, env).stdout) == NOTHING_TO_DO
    repro = run([dvc, "repro"], clone, env)
    assert re.findall(r"Running stage '([\w-]+)'", repro.stdout) == ["tracking-target"], repro.stdout
    assert not git(clone, "status", "--porcelain")


def test_dvc_push_and_pull_through_a_local_remote(pushed: Reproduced, tmp_path: Path) -> None:
    remote = tmp_path / "remote"

    _round_trip(pushed, tmp_path / "clone", {"url": str(remote)})

    assert len([p for p in remote.rglob("*") if p.is_file()]) >= len(tracked_outputs(pushed.root, pushed.params))


@pytest.fixture
def s3_server() -> Iterator[ThreadedMotoServer]:
    """moto's S3-compatible server on a free port, stopped after the test."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_dvc_push_and_pull_through_an_s3_remote(
    pushed: Reproduced, tmp_path: Path, s3_server: ThreadedMotoServer
) -> None:
    import boto3

    host, port = s3_server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="dvc-store")

    _round_trip(
        pushed,
        tmp_path / "clone",
        {"url": "s3://dvc-store/project", "endpointurl": endpoint},
        {**pushed.env, **credentials},
    )

    listed = s3.list_objects_v2(Bucket="dvc-store", Prefix="project/")
    assert listed["KeyCount"] >= len(tracked_outputs(pushed.root, pushed.params))
