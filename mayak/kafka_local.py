"""A local single-node Apache Kafka broker (KRaft) assembled from Maven Central jars.

Responsible for: fetching the broker's classpath once into a cache directory outside the
repository, formatting a KRaft storage directory, starting the JVM in the background,
waiting until it serves metadata, and stopping it cleanly (SIGTERM, then SIGKILL).

Kafka 3.9.x is used rather than 4.x: it is the last line that keeps every old protocol
version, which the Python clients here (aiokafka under Faust, kafka-python) still negotiate,
and KRaft is production-ready in it.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from mayak.errors import MayakError
from mayak.kafka_admin import kafka_admin

if TYPE_CHECKING:
    from mayak.settings import Settings

_TEMPLATES = resources.files("mayak.kafka")


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise MayakError(
            f"`{name}` not found on PATH: install {package} (e.g. apt-get install {package})"
        )
    return path


def ensure_jars(cache_dir: Path, version: str, log: Callable[[str], object] = print) -> Path:
    """Return the directory of broker jars, downloading them with Maven the first time."""
    home = cache_dir / f"kafka-{version}"
    libs = home / "libs"
    done = home / ".complete"
    if done.exists():
        return libs
    require_tool("java", "openjdk-17-jre-headless")
    mvn = require_tool("mvn", "maven")
    home.mkdir(parents=True, exist_ok=True)
    pom = _TEMPLATES.joinpath("pom.xml").read_text().replace("KAFKA_VERSION", version)
    (home / "pom.xml").write_text(pom)
    log(f"Assembling Apache Kafka {version} from Maven Central into {home} (once) ...")
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(home / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise MayakError(
            "Maven could not fetch the Kafka jars (is Maven Central reachable?):\n"
            + "\n".join(tail)
        )
    done.write_text(version)
    return libs


def new_cluster_id() -> str:
    """A random KRaft cluster id (base64url of a UUID) that does not start with '-': the storage
    tool's argument parser would read such an id as an option and fail."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


#: below this heap a small site's JVM: the serial collector (one GC thread, no G1 remembered
#: sets and region tables, whose native overhead is some 10% of the heap; pauses of a few ms on
#: a small heap) and the C1 compiler only (C2's compilations cost a fresh broker more CPU than
#: its faster code saves at a small site's request rates: stack bench 2026-12-02, broker CPU
#: per event 289-317 us against 423-611 us, RSS 153 against 175 MB). From this heap on, G1 and
#: both compilers, for a broker that serves many requests per second.
SMALL_HEAP_BELOW_MB = 1024


def jvm_memory_flags(heap_mb: int) -> list[str]:
    """The broker JVM's memory and compiler flags for a heap of at most ``heap_mb``.

    The heap starts small (the JVM's default initial heap is 1/64 of the machine's memory,
    384 MB on a 24 GiB host, whatever ``-Xmx`` says) and grows only as the broker needs;
    ``-XX:-UsePerfData`` drops the shared hsperfdata file nobody reads here."""
    flags = [f"-Xmx{heap_mb}m", f"-Xms{min(heap_mb, 32)}m", "-XX:-UsePerfData"]
    if heap_mb < SMALL_HEAP_BELOW_MB:
        return [*flags, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    return [*flags, "-XX:+UseG1GC"]


def dedupe_buffer_mb(heap_mb: int) -> int:
    """The log cleaner's offset map (``log.cleaner.dedupe.buffer.size``): Kafka's default,
    128 MB, is allocated on the heap when the cleaner starts (it compacts the offsets and
    session changelog topics), a quarter of a 512 MB heap for maps of a few thousand keys
    here. 1/16 of the heap, at least 8 MB: 8 MB hold ~350,000 keys per cleaning pass."""
    return max(8, heap_mb // 16)


@dataclass
class LocalBroker:
    """One broker process whose state (logs, pid file, config) lives under ``home``."""

    home: Path
    cache_dir: Path
    version: str = "3.9.2"
    port: int = 9092
    controller_port: int = 9093
    heap_mb: int = 256
    partitions: int = 2

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Where the broker keeps its partitions' log segments (one directory each)."""
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return "stopped"
        ready = "serving" if port_open("127.0.0.1", self.port) else "starting"
        return f"running (pid {pid}, {ready} on {self.bootstrap})"

    def _write_config(self) -> Path:
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = (
            _TEMPLATES.joinpath("server.properties")
            .read_text()
            .format(
                port=self.port,
                controller_port=self.controller_port,
                log_dir=self.log_dir.resolve(),
                partitions=self.partitions,
                dedupe_bytes=dedupe_buffer_mb(self.heap_mb) * 2**20,
            )
        )
        config = self.home / "server.properties"
        config.write_text(text)
        (self.home / "log4j.properties").write_text(
            _TEMPLATES.joinpath("log4j.properties").read_text()
        )
        return config

    def _java(self, libs: Path, *args: str, heap_mb: int) -> list[str]:
        log4j = (self.home / "log4j.properties").resolve()
        return [
            "java",
            *jvm_memory_flags(heap_mb),
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def _format(self, libs: Path, config: Path) -> None:
        if (self.log_dir / "meta.properties").exists():
            return  # already formatted: keep the topics and their messages
        cmd = self._java(
            libs,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(config),
            heap_mb=256,
        )
        result = subprocess.run(cmd, capture_output=True, text=True, umask=0o077)
        if result.returncode != 0:
            raise MayakError(f"formatting Kafka storage failed: {result.stdout}{result.stderr}")

    def start(self, timeout: float = 90.0, log: Callable[[str], object] = print) -> None:
        """Start the broker in the background (its own session) and wait until it serves."""
        if self.pid() is not None:
            return
        if port_open("127.0.0.1", self.port):
            raise MayakError(
                f"port {self.port} is taken by another program: stop it or set "
                "MAYAK_KAFKA_BOOTSTRAP=127.0.0.1:<free port>"
            )
        libs = ensure_jars(self.cache_dir, self.version, log=log)
        config = self._write_config()
        self._format(libs, config)
        cmd = self._java(libs, "kafka.Kafka", str(config), heap_mb=self.heap_mb)
        with open(self.log_file, "ab") as out:
            # segments 0600 in 0700 directories: messages are not readable by other users
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                umask=0o077,
            )
        self.pid_file.write_text(str(proc.pid))
        self._wait_ready(proc, timeout)

    def _wait_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        # real time, not injected: the broker is a child process, no fake clock can hurry it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise MayakError(
                    f"the Kafka broker exited (code {proc.returncode}); see {self.log_file}"
                )
            if port_open("127.0.0.1", self.port) and self._serves_metadata():
                return
            time.sleep(0.3)
        self.stop()
        raise MayakError(
            f"the Kafka broker did not become ready in {timeout:.0f}s; see {self.log_file}"
        )

    def _serves_metadata(self) -> bool:
        try:
            with kafka_admin(self.bootstrap, request_timeout_ms=3000) as admin:
                admin.list_topics()
            return True
        except Exception:  # not ready yet, whatever the reason: asked again shortly
            return False

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker, SIGKILL it after ``timeout``; True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        # real time, not injected: waiting for a child process to exit
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            _reap(pid)
            time.sleep(0.2)
        if _pid_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def broker_from_settings(settings: Settings) -> LocalBroker:
    host, _, port = settings.kafka_bootstrap.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise MayakError(
            f"MAYAK_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} is not local: "
            "`mayak kafka` only manages a broker on 127.0.0.1"
        )
    return LocalBroker(
        home=settings.data_dir / "kafka",
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
        port=int(port),
        controller_port=settings.kafka_controller_port,
        heap_mb=settings.kafka_heap_mb,
        partitions=settings.kafka_partitions,
    )
