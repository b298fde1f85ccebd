"""Talking to the Docker daemon: the CLI, whether a daemon answers and what it is (``daemon_info``), and
the containers a crashed platform left behind.

Every container the docker backend starts carries two labels: the run's id and its *owner*, the
platform process that started it (host name, pid and the process's start time, so a recycled pid is
not mistaken for it). ``docker run`` does not stop its container when the client dies, so a platform
killed mid-run (SIGKILL, OOM, power) leaves its containers running; :func:`remove_leftovers` (run
when a docker backend is prepared, and by ``trainarena docker clean``) removes every container of
this host whose owner is gone. Containers of a platform that is still alive, on this host or another one sharing the daemon,
are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainarena.execution.runtime import SandboxUnavailable

RUN_LABEL = "trainarena.run"
OWNER_LABEL = "trainarena.owner"
# What to do about a daemon that remaps user namespaces (DaemonInfo.userns_remap): the docker backend
# needs a container's uid to be that host uid.
USERNS_REMAP_FIX = ('give the docker backend a daemon without userns-remap (remove "userns-remap" from '
                    "/etc/docker/daemon.json and restart dockerd, or start another dockerd with its own --data-root, "
                    "--exec-root and -H socket for trainarena and point DOCKER_HOST at it), or use the bwrap backend "
                    "(TRAINARENA_SANDBOX__BACKEND=bwrap)")
# A remapping daemon keeps its data in a folder named after the host uid and gid container root is.
_REMAPPED_ROOT_DIR = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class DockerCli:
    """The docker CLI at ``executable``; every call limited to ``timeout`` seconds."""

    executable: str
    timeout: float

    def call(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run ``docker ARGS`` and return what it did (a timeout or a missing CLI reads as rc 127)."""
        try:
            return subprocess.run([self.executable, *args], input=stdin, capture_output=True, env=client_env(),
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return subprocess.CompletedProcess([self.executable, *args], 127, b"", str(error).encode())

    def text(self, *args: str, stdin: bytes | None = None) -> str:
        """``docker ARGS``'s stdout; SandboxUnavailable naming the call and its error when it fails."""
        done = self.call(*args, stdin=stdin)
        if done.returncode != 0:
            raise SandboxUnavailable(f"`docker {' '.join(args)}` failed: {_first_line(done.stderr)}")
        return done.stdout.decode().strip()


def find_docker() -> str:
    path = shutil.which("docker")
    if path is None:
        raise SandboxUnavailable("the docker backend needs the docker CLI and a running daemon; install Docker "
                                 "(apt-get install docker.io) or use the default bwrap backend")
    return path


def daemon_problem(docker: str = "docker", timeout: float = 20.0) -> str | None:
    """Why no Docker daemon can be used from here (None: one answers)."""
    if shutil.which(docker) is None:
        return f"no docker CLI ({docker!r} is not on PATH): apt-get install docker.io"
    done = DockerCli(docker, timeout).call("info", "--format", "{{.ServerVersion}}")
    if done.returncode != 0 or not done.stdout.strip():
        return (f"no Docker daemon answers `docker info` ({_first_line(done.stderr) or 'no server version'}); "
                "start one: dockerd --iptables=false --ip6tables=false --bridge=none (as root)")
    return None


@dataclass(frozen=True)
class DaemonInfo:
    """What the docker backend reads of the daemon (``docker info``) before its first run."""

    cgroup_version: str  # "1" or "2"
    # The daemon remaps user namespaces (dockerd --userns-remap; SecurityOptions lists name=userns): a
    # container's uid N is host uid remapped_root + N, of a subordinate range (/etc/subuid).
    userns_remap: bool
    remapped_root: int | None  # None where the daemon's root folder does not say it (/var/lib/docker/UID.GID)


def daemon_info(cli: DockerCli) -> DaemonInfo:
    """The daemon's :class:`DaemonInfo`; SandboxUnavailable when it does not answer."""
    text = cli.text("info", "--format", "{{json .}}")
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise SandboxUnavailable(f"`docker info --format {{{{json .}}}}` answered no JSON object: {text[:200]!r}")
    remapped = "name=userns" in [part for option in info.get("SecurityOptions") or () for part in str(option).split(",")]
    root = _REMAPPED_ROOT_DIR.fullmatch(Path(str(info.get("DockerRootDir") or "")).name) if remapped else None
    return DaemonInfo(str(info.get("CgroupVersion") or "1"), remapped, int(root.group(1)) if root else None)


def client_env() -> dict[str, str]:
    """The docker CLI's own environment: how to reach the daemon, nothing else of the platform's."""
    keep = {key: value for key, value in os.environ.items() if key.startswith("DOCKER_")}
    keep["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    if "HOME" in os.environ:
        keep["HOME"] = os.environ["HOME"]  # the CLI reads its config from ~/.docker
    return keep


# -- owners and leftovers ----------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (/proc/PID/stat field 22), or None
    when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ")".
    return int(stat.rsplit(")", 1)[1].split()[19])


def owner_label(pid: int | None = None) -> str:
    """``host:pid:start``: this platform process, as its containers are labelled."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{process_start_time(pid)}"


def owner_is_gone(label: str, hostname: str, start_time_of: Callable[[int], int | None] = process_start_time) -> bool:
    """Whether the platform process a container's owner label names has ended. Only owners on
    ``hostname`` can be checked; a label naming another host (or none that parses) is never gone."""
    parts = label.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != hostname or not parts[1].isdigit():
        return False
    return str(start_time_of(int(parts[1]))) != parts[2]


@dataclass(frozen=True)
class Leftover:
    container: str  # its name
    run_id: str
    owner: str


def leftovers(cli: DockerCli) -> list[Leftover]:
    """Containers of trainarena runs on this host whose owning platform process is gone."""
    listing = cli.text("ps", "--all", "--no-trunc", "--filter", f"label={OWNER_LABEL}", "--format",
                       f'{{{{.Names}}}}\t{{{{.Label "{RUN_LABEL}"}}}}\t{{{{.Label "{OWNER_LABEL}"}}}}')
    hostname = socket.gethostname()
    found = []
    for line in filter(None, listing.splitlines()):
        name, run_id, owner = (line.split("\t") + ["", ""])[:3]
        if owner_is_gone(owner, hostname):
            found.append(Leftover(name, run_id, owner))
    return found


def remove_leftovers(cli: DockerCli) -> list[Leftover]:
    """Remove (kill first) every container :func:`leftovers` finds; returns those removed."""
    removed = []
    for leftover in leftovers(cli):
        if cli.call("rm", "--force", leftover.container).returncode == 0:
            removed.append(leftover)
    return removed


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[0] if lines else ""
