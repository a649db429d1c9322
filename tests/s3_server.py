"""A local S3 server that enforces credentials, for tests of a baked project against a private DVC remote.

moto's server (``moto[server]``) with its IAM authentication on: ``INITIAL_NO_AUTH_ACTION_COUNT`` lets the first
requests through unsigned, which make an admin user and its access key; every later request must be signed by a known
key and allowed by its user's policy. With the admin key the fixture then makes a bucket, a read-only user (list and
get: ``put_object`` is ``AccessDenied``) and a read-write one. An unknown key gets ``InvalidAccessKeyId``.

The server runs on 127.0.0.1 on a free port in a process group of its own, stopped (the whole group) afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.shared import free_port, wait_for_http

REGION = "us-east-1"
UNSIGNED_ACTIONS = 3  # create the admin user, allow it everything, give it a key: then authentication is on
BUCKET = "team-data"


@dataclass(frozen=True)
class Credentials:
    """An access key pair, as the AWS SDKs read it from the environment."""

    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        """The variables boto3 (and so DVC's S3 remote) reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
        }


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint, a bucket, and users whose keys it knows."""

    endpoint: str
    bucket: str
    admin: Credentials
    read_only: Credentials
    read_write: Credentials

    @property
    def unknown(self) -> Credentials:
        """A key pair the server never issued."""
        return Credentials("AKIAUNKNOWNKEY000000", "not-a-secret-the-server-knows")

    def client(self, credentials: Credentials) -> Any:
        """A boto3 S3 client signed with ``credentials``."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
        )


def _policy(*actions: str) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _user(iam: Any, name: str, policy: str) -> Credentials:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


@contextmanager
def s3_server(log: Path) -> Iterator[S3Server]:
    """Start the server (its output to ``log``), set it up, yield it; stop its process group afterwards."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(UNSIGNED_ACTIONS), "MOTO_PORT": str(port)}
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_for_http(f"{endpoint}/moto-api/", timeout=60, process=server)
        # Unsigned until UNSIGNED_ACTIONS requests have been made (the moto-api poll above is not an action).
        setup = {"endpoint_url": endpoint, "region_name": REGION}
        iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **setup)
        admin = _user(iam, "admin", _policy("*"))
        iam = boto3.client(
            "iam", aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key, **setup
        )
        read_only = _user(iam, "data-reader", _policy("s3:ListBucket", "s3:GetObject", "s3:GetBucketLocation"))
        read_write = _user(iam, "data-writer", _policy("s3:*"))
        found = S3Server(endpoint, BUCKET, admin, read_only, read_write)
        found.client(admin).create_bucket(Bucket=BUCKET)
        yield found
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
