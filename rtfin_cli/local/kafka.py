"""A single-node Apache Kafka 4.x broker in KRaft mode (broker + controller), from Maven Central jars."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtfin_cli.errors import ProcessError
from rtfin_cli.local.supervisor import Service, ServiceStatus
from rtfin_cli.locate import KAFKA_BUNDLE, classpath

LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT">
    <PatternLayout pattern="[%d] %p %m (%c{1})%n"/></Console></Appenders>
  <Loggers>
    <Logger name="kafka" level="WARN"/><Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/><Logger name="kafka.server.BrokerServer" level="INFO"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


@dataclass
class KafkaBroker:
    """Run, stop and probe the local broker. ``data_dir`` holds config, logs, data and the pid file."""

    data_dir: Path
    cache_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    name: str = "kafka"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.home = self.data_dir / self.name
        self.service = Service(self.name, self.data_dir, self.port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.num.partitions": "5",  # default 50: slow first transaction
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
            # time-based retention never deletes a segment holding a timestamp ahead of the wall clock (the
            # replay's, below): the size bound per partition keeps a long-running demo's disk from only growing
            "log.retention.bytes": str(512 * 1024 * 1024),
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.retention.check.interval.ms": "60000",
            # the market replay runs faster than real time (--speed), so its event times may lie ahead of the
            # wall clock; Kafka 4 rejects timestamps more than 1 h in the future by default
            "log.message.timestamp.after.max.ms": str(2**63 - 1),
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise ProcessError(
                "Java is not installed (Kafka needs JDK 17+)", "Install openjdk-17-jre-headless."
            )
        return java

    def _format(self, classpath: str) -> None:
        """Write the config and format the KRaft storage once (keeps the cluster id across restarts)."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "server.properties").write_text(self._config())
        (self.home / "log4j2.xml").write_text(LOG4J2)
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # StorageTool would read a leading '-' as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = [self._java(), "-cp", classpath, f"-Dlog4j2.configurationFile={self.home / 'log4j2.xml'}",
               "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.home / "server.properties")]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ProcessError(f"cannot format Kafka storage: {(proc.stdout + proc.stderr).strip()[-400:]}")

    def start(self, timeout: float = 90.0) -> int:
        """Start the broker and wait until it answers metadata requests; returns the pid."""
        if (pid := self.service.pid()) is not None:
            raise ProcessError(
                f"Kafka is already running (pid {pid}) on {self.bootstrap}",
                "Stop it with `rtfin local kafka stop`.",
            )
        jars = classpath(self.cache_dir, KAFKA_BUNDLE)
        self._format(jars)
        cmd = [
            self._java(), f"-Xmx{self.heap}", f"-Xms{min_heap(self.heap)}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.xml'}", "-cp", jars,
            "kafka.Kafka", str(self.home / "server.properties"),
        ]  # fmt: skip
        return self.service.start(cmd, ready=self.ready, timeout=timeout)

    def ready(self) -> bool:
        """True when the broker answers a metadata request."""
        from confluent_kafka.admin import AdminClient

        from rtfin_cli.kafka.clients import KAFKA_LOGGER

        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "socket.timeout.ms": 1000,
            "logger": KAFKA_LOGGER,
        }
        client = AdminClient(conf)
        meta = client.list_topics(timeout=1.0)
        return bool(meta.brokers)

    def stop(self, timeout: float = 30.0) -> bool:
        return self.service.stop(timeout)

    def status(self) -> ServiceStatus:
        return self.service.status()

    def purge(self) -> None:
        if self.service.pid() is not None:
            raise ProcessError("Kafka is running; stop it before purging its data")
        shutil.rmtree(self.home, ignore_errors=True)


def min_heap(heap: str) -> str:
    """Initial heap: a quarter of the max, at least 128m."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    mb = float(heap[:-1]) * units.get(heap[-1].lower(), 1) if heap[-1].isalpha() else float(heap) / 2**20
    return f"{max(128, int(mb // 4))}m"


def from_settings(local: object) -> KafkaBroker:
    """The broker described by LocalSettings."""
    from rtfin_cli.settings import LocalSettings

    assert isinstance(local, LocalSettings)
    return KafkaBroker(
        data_dir=Path(local.data_dir),
        cache_dir=Path(local.cache_dir),
        port=local.kafka_port,
        controller_port=local.kafka_controller_port,
        heap=local.kafka_heap,
    )
