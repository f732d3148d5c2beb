"""Java artifacts from Maven Central, fetched once with Maven into the cache directory.

The versions and where the jars land are in ``rtfin_cli.locate``, which code that runs them reads.

``python -m rtfin_cli.local.jars`` (called by ``make setup``) fetches every bundle; rtfin never
downloads at run time — a missing bundle is a clear error that says to run ``make setup``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from rtfin_cli.errors import ProcessError
from rtfin_cli.locate import KAFKA_BUNDLE, KAFKA_VERSION, SPARK_KAFKA_BUNDLE, SPARK_VERSION, bundle_dir

BUNDLES: dict[str, list[tuple[str, str, str]]] = {
    KAFKA_BUNDLE: [
        ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        ("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),
        ("org.apache.logging.log4j", "log4j-core", "2.24.3"),
    ],
    SPARK_KAFKA_BUNDLE: [
        ("org.apache.spark", "spark-sql-kafka-0-10_2.13", SPARK_VERSION),
    ],
}

_SETTINGS = """<settings><mirrors><mirror><id>central-only</id><mirrorOf>*</mirrorOf>
<url>https://repo.maven.apache.org/maven2</url></mirror></mirrors></settings>
"""

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>rtfin</groupId><artifactId>{name}</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def fetch(cache_dir: Path, name: str) -> Path:
    """Resolve a bundle with Maven (idempotent; a completed bundle is not fetched again)."""
    out = bundle_dir(cache_dir, name)
    if (out / ".complete").exists():
        return out
    if shutil.which("mvn") is None:
        raise ProcessError("Maven (mvn) is not installed", "Install Maven (apt-get install maven).")
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in BUNDLES[name]
    )
    work = Path(cache_dir).resolve() / "maven" / name
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_POM.format(name=name, deps=deps))
    (work / "settings.xml").write_text(_SETTINGS)  # every repository a pom names goes to Maven Central
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn", "-q", "-B", "-U", "-f", str(work / "pom.xml"), "-s", str(work / "settings.xml"),
        f"-Dmaven.repo.local={Path(cache_dir).resolve() / 'm2'}",
        "dependency:copy-dependencies", f"-DoutputDirectory={out}", "-DincludeScope=runtime",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ProcessError(f"Maven could not fetch {name}: {(proc.stdout + proc.stderr).strip()[-500:]}")
    (out / ".complete").write_text("ok\n")
    return out


def main(argv: list[str]) -> int:
    cache = Path(argv[0]) if argv else Path(".cache")
    for name in BUNDLES:
        path = fetch(cache, name)
        print(f"{name}: {len(list(path.glob('*.jar')))} jars in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
