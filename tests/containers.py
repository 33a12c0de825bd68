"""Build and run the project's images for real: podman where installed (as on CI), else Docker.

Podman here runs with `runc` (crun cannot set limits on these machines' cgroups) and with the open-file and process limits
the machine already has (raising them is refused). Where pip needs this machine's CA bundle, the build gets it as a secret."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import REPO

ENGINE = shutil.which("podman") or shutil.which("docker")
PODMAN = ENGINE is not None and Path(ENGINE).name == "podman"
CA_BUNDLE = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"] if PODMAN else []


def engine(*args, timeout=1800, check=True) -> subprocess.CompletedProcess:
    "Run the container engine with `args` and capture its output; fail with that output if `check` and it fails."
    runtime = ["--runtime", "runc"] if PODMAN and shutil.which("runc") else []
    r = subprocess.run([ENGINE, *runtime, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 or not check, f"{ENGINE} {' '.join(map(str, args))[:300]}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def build(tag: str, target: str | None = None, build_args: dict | None = None, volumes=()) -> float:
    "Build the Dockerfile into `tag` (its base image is pulled, or stood in for where no registry answers); the seconds it took."
    assert ENGINE, "no container engine: run scripts/system-deps.sh (installs podman)"
    subprocess.run(["bash", str(REPO / "scripts" / "container-base.sh"), Path(ENGINE).name], check=True, timeout=900)
    args = ["build", "-t", tag, *(["--target", target] if target else [])]
    args += [a for k, v in (build_args or {}).items() for a in ("--build-arg", f"{k}={v}")]
    args += [a for v in volumes for a in ("-v", v)]  # (podman only: Docker's builds take no volumes)
    if os.path.exists(CA_BUNDLE): args += ["--secret", f"id=ca,src={CA_BUNDLE}"]
    if PODMAN: args += ["--format", "docker", *LIMITS]  # (the OCI format has no HEALTHCHECK)
    t0 = time.time()
    engine(*args, str(REPO))
    return time.time() - t0


def run(image: str, *cmd, options=(), timeout=1800, check=True) -> subprocess.CompletedProcess:
    "`run --rm` a container of `image` with `options`, to completion."
    return engine("run", "--rm", *LIMITS, *options, image, *cmd, timeout=timeout, check=check)


def start(image: str, name: str, options=()) -> str:
    "Start a detached container of `image` named `name` (any old one of that name removed first)."
    engine("rm", "-f", name, check=False)
    engine("run", "-d", "--name", name, *LIMITS, *options, image)
    return name


def inspect(obj: str) -> dict:
    return json.loads(engine("inspect", obj).stdout)[0]


def size_mb(image: str) -> float:
    return inspect(image)["Size"] / 1e6
