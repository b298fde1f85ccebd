"""Example competitor that attacks its sandbox. Every attempt prints one line:

    ATTEMPT <name>: BLOCKED <why>      the sandbox stopped it
    ATTEMPT <name>: SUCCEEDED <what>   a hole: the platform's tests fail on any such line

``HOSTILE_PROBE_PATHS`` (colon-separated, optional) adds host paths to try to read - the tests pass the
real paths of a fake hidden split and of a sibling run, playing an attacker who knows the layout.
It leaves a double-forked, setsid'd daemon that tries to write /output/daemon_marker after the run
ends, then exits 0 with nothing valid in /output.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from fnmatch import fnmatch

WALK_SECONDS = 5.0  # cap on the filesystem hunt, so the example stays quick
SKIP_WALK = ("/proc", "/sys", "/dev")
GUESSED_SECRETS = (
    "/etc/shadow", "/root/.bash_history", "/root/.ssh/id_rsa", "/root/.gitconfig", "/work/main/.trainarena",
    "/work/main/src", "/work/shared", "/work/main/.trainarena/hidden", "/work/main/.trainarena/runs",
    ".trainarena/hidden", "/home", "/var/lib", "/farm", "/mnt",
)


def attempt(name: str, action: Callable[[], str]) -> None:
    try:
        print(f"ATTEMPT {name}: SUCCEEDED {action()}", flush=True)
    except Exception as exc:  # every failure is the outcome we report
        print(f"ATTEMPT {name}: BLOCKED {type(exc).__name__}: {exc}", flush=True)


def connect(host: str, port: int) -> Callable[[], str]:
    def run() -> str:
        with socket.create_connection((host, port), timeout=2.0):
            return f"connected to {host}:{port}"

    return run


def resolve(name: str) -> str:
    return f"{name} -> {socket.getaddrinfo(name, 443)[0][4]}"


def udp_send() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\0" * 12, ("8.8.8.8", 53))
        return "sent a UDP datagram to 8.8.8.8:53"


def read(path: str) -> Callable[[], str]:
    def run() -> str:
        if os.path.isdir(path):
            return f"listed {path}: {sorted(os.listdir(path))[:10]}"
        with open(path, "rb") as fh:
            return f"read {path}: {fh.read(80)!r}"

    return run


def write(path: str) -> Callable[[], str]:
    def run() -> str:
        with open(path, "w") as fh:
            fh.write("hostile was here")
        return f"wrote {path}"

    return run


def read_platform_data_dir() -> str:
    """The platform's own setting, if it leaked into the environment."""
    return read(os.environ["TRAINARENA_DATA_DIR"])()


def hunt_hidden() -> str:
    """Walk the whole visible tree for the hidden split; only a find outside the runtime counts."""
    found, start = [], time.monotonic()
    runtime = ("/usr", os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix))
    for root, dirs, files in os.walk("/"):
        if root.startswith(SKIP_WALK) or root.startswith(runtime) or time.monotonic() - start > WALK_SECONDS:
            dirs[:] = []
            continue
        for name in dirs + files:
            if "hidden" in name or fnmatch(name, "*test*.jsonl"):
                found.append(os.path.join(root, name))
    if found:
        return f"found {found[:10]}"
    raise FileNotFoundError("no hidden split anywhere in the visible tree")


def foreign_processes() -> str:
    mine = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                mine.append(fh.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    foreign = [cmd for cmd in mine if "train.py" not in cmd and "bwrap" not in cmd and cmd]
    if foreign:
        return f"sees other processes: {foreign[:5]}"
    raise PermissionError(f"only its own {len(mine)} processes are visible")


def leaked_environment() -> str:
    allowed_prefixes = ("TRAINARENA_", "HF_", "HOSTILE_")
    allowed = {"CUDA_VISIBLE_DEVICES", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "PYTHONDONTWRITEBYTECODE",
               "PYTHONUNBUFFERED", "HOME", "TMPDIR", "LANG", "PWD"}
    leaked = sorted(k for k in os.environ if k not in allowed and not k.startswith(allowed_prefixes))
    if leaked:
        return f"platform variables visible: {leaked}"
    raise PermissionError("only the contract's variables are set")


def leave_daemon() -> None:
    """Double fork + setsid: the grandchild outlives this process unless the sandbox kills it."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for _ in range(40):
                time.sleep(0.25)
                try:
                    with open("/output/daemon_marker", "w") as fh:
                        fh.write(f"daemon alive at {time.time()}")
                except OSError:
                    pass
            os._exit(0)
        os._exit(0)
    os.wait()


def main() -> None:
    attempt("net-tcp-localhost", connect("127.0.0.1", 22))
    attempt("net-tcp-localhost-http", connect("127.0.0.1", 8000))
    attempt("net-tcp-external", connect("1.1.1.1", 443))
    attempt("net-udp-external", udp_send)
    attempt("net-dns", lambda: resolve("pypi.org"))
    for path in GUESSED_SECRETS:
        attempt(f"read {path}", read(path))
    for path in filter(None, os.environ.get("HOSTILE_PROBE_PATHS", "").split(":")):
        attempt(f"read {path}", read(path))
    attempt("read $TRAINARENA_DATA_DIR", read_platform_data_dir)
    attempt("hunt-hidden-split", hunt_hidden)
    attempt("see-host-processes", foreign_processes)
    attempt("leaked-environment", leaked_environment)
    for path in ("/submission/pwned.txt", "/inputs/pwned.txt", "/usr/pwned.txt", "/etc/pwned.txt",
                 f"{sys.prefix}/pwned.txt", "/work/pwned.txt", "/pwned.txt"):
        attempt(f"write {path}", write(path))
    with open("/tmp/hostile_scratch.txt", "w") as fh:  # allowed: /tmp is private scratch
        fh.write("scratch")
    print("SCRATCH /tmp/hostile_scratch.txt written (allowed, private to this run)", flush=True)
    leave_daemon()
    print("DAEMON started; exiting 0 with nothing valid in /output", flush=True)


if __name__ == "__main__":
    main()
