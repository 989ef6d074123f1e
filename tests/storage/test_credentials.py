"""S3 credentials from the standard chain when no key pair is set, against the real test S3
server: the environment, a web identity token through STS, the instance role through IMDSv2.
STS and the metadata service are a small loopback server (IamAwsProvider's endpoint is
CONVERTLY_S3_CREDENTIALS_ENDPOINT) that hands out the S3 server's keys. Without a session
token: the test S3 server (SeaweedFS) refuses any token it did not issue itself, so the
X-Amz-Security-Token that real temporary credentials add is minio's part, not checked here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from convertly.errors import StorageMisconfiguredError
from convertly.settings import Settings
from convertly.storage import build_storage
from convertly.storage.s3 import S3Storage
from tests.infra import SeaweedS3
from tests.storage.conftest import BUCKET, empty_bucket

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SECRET_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_REGION",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
EXPIRES = "2099-01-01T00:00:00Z"
ROLE = "convertly-role"
IMDS_TOKEN = "imds-session-token"


class CredentialServer(ThreadingHTTPServer):
    """Plays AWS STS (AssumeRoleWithWebIdentity) and the EC2 metadata service (IMDSv2),
    handing out `keys`, and records what it was asked."""

    def __init__(self, keys: tuple[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.keys = keys
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: CredentialServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: str, kind: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> None:
        self.server.asked.append((self.command, self.path, dict(self.headers)))

    def do_PUT(self) -> None:
        self._record()
        if self.path == "/latest/api/token" and \
                self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._send(200, IMDS_TOKEN)
        else:
            self._send(404, "")

    def do_GET(self) -> None:
        self._record()
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            self._send(401, "")  # IMDSv2 only
        elif self.path == "/latest/meta-data/iam/security-credentials/":
            self._send(200, ROLE)
        elif self.path == f"/latest/meta-data/iam/security-credentials/{ROLE}":
            access, secret = self.server.keys
            self._send(200, json.dumps({
                "Code": "Success", "AccessKeyId": access, "SecretAccessKey": secret,
                "Token": "", "Expiration": EXPIRES}), "application/json")
        else:
            self._send(404, "")

    def do_POST(self) -> None:
        self._record()
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if query.get("Action") != "AssumeRoleWithWebIdentity":
            self._send(400, "")
            return
        access, secret = self.server.keys
        self._send(200, (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/'
            '2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials>'
            f"<AccessKeyId>{access}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken></SessionToken><Expiration>{EXPIRES}</Expiration>"
            "</Credentials></AssumeRoleWithWebIdentityResult>"
            "</AssumeRoleWithWebIdentityResponse>"), "text/xml")


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def credential_server(seaweed: SeaweedS3) -> Iterator[CredentialServer]:
    server = CredentialServer((seaweed.access_key, seaweed.secret_key))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _storage(seaweed: SeaweedS3, **settings: str) -> S3Storage:
    empty_bucket(seaweed, BUCKET)
    built = build_storage(Settings(s3_endpoint=seaweed.endpoint, s3_bucket=BUCKET,
                                   **settings), probe=False)
    assert isinstance(built, S3Storage)
    return built


def _round_trip(storage: S3Storage, tmp_path: Path) -> None:
    storage.check()
    storage.put_bytes("creds/a.txt", b"hello")
    out = tmp_path / "a.txt"
    storage.get_file("creds/a.txt", out)
    assert out.read_bytes() == b"hello"


@pytest.mark.usefixtures("no_aws_environment")
def test_environment_keys_come_first(seaweed: SeaweedS3, credential_server: CredentialServer,
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    # The metadata service would hand out other keys: it is never asked.
    credential_server.keys = ("someone-else", "not-the-secret-key")
    storage = _storage(seaweed, s3_credentials_endpoint=credential_server.url)
    _round_trip(storage, tmp_path)
    assert credential_server.asked == []

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key")
    with pytest.raises(StorageMisconfiguredError) as raised:
        _storage(seaweed).check()
    assert "SignatureDoesNotMatch" in raised.value.reason


@pytest.mark.usefixtures("no_aws_environment")
def test_instance_role_through_imdsv2(seaweed: SeaweedS3, credential_server: CredentialServer,
                                      tmp_path: Path) -> None:
    storage = _storage(seaweed, s3_credentials_endpoint=credential_server.url)
    _round_trip(storage, tmp_path)
    asked = [(method, path) for method, path, _ in credential_server.asked]
    # A session token first (IMDSv2), then the role's name, then its credentials; once
    # (they are kept until they expire).
    assert asked == [("PUT", "/latest/api/token"),
                     ("GET", "/latest/meta-data/iam/security-credentials/"),
                     ("GET", f"/latest/meta-data/iam/security-credentials/{ROLE}")]


@pytest.mark.usefixtures("no_aws_environment")
def test_web_identity_token_through_sts(seaweed: SeaweedS3,
                                        credential_server: CredentialServer,
                                        monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.service-account.signature")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/convertly")
    storage = _storage(seaweed, s3_credentials_endpoint=credential_server.url)
    _round_trip(storage, tmp_path)
    [(method, path, _)] = credential_server.asked
    query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
    assert method == "POST"
    assert query["Action"] == "AssumeRoleWithWebIdentity"
    assert query["WebIdentityToken"] == token.read_text()
    assert query["RoleArn"] == "arn:aws:iam::123456789012:role/convertly"


@pytest.mark.usefixtures("no_aws_environment")
def test_no_credentials_anywhere_is_one_clear_error(
        seaweed: SeaweedS3, credential_server: CredentialServer) -> None:
    # A metadata service with no role for this machine.
    credential_server.keys = ("", "")
    storage = _storage(seaweed, s3_credentials_endpoint=f"{credential_server.url}/nothing")
    with pytest.raises(StorageMisconfiguredError) as raised:
        storage.check()
    assert raised.value.reason.startswith("no S3 credentials: set CONVERTLY_S3_ACCESS_KEY")
