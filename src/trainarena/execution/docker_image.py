"""The docker backend's default image, built from this host on demand: an empty root filesystem
onto which each run binds, read-only, exactly what bwrap binds (/usr, a few /etc entries, the pinned
training interpreter's prefixes) and the run's own three directories.

Why this shape and not an image holding a Python installation: no registry is reachable where the
platform and its CI run, so nothing can be pulled; the training environment a script gets must be
the pinned one bwrap gives it (the platform's interpreter and its .venv, over 2 GB with torch), and
copying that into an image costs a minute of tar and another 2 GB at every change of a pin, whereas
binding it costs nothing and cannot drift from bwrap's. So the image holds only what a bind cannot
give: the root's layout (/bin, /lib, /lib64... as this host's links into /usr, or empty folders where
the host has real ones, bound read-only at run time) and the mount points. It is a few kilobytes,
written in memory in milliseconds (entries sorted, owners and times fixed) and imported with
``docker import``; its tag is the sha256 of that tar, so a host whose layout changed gets a new
image and an unchanged one is never built twice (``trainarena docker build-image`` builds it ahead).

Needs the daemon on the platform's own host (it binds host paths). An operator with a remote daemon
or who wants a self-contained image sets ``SandboxRules.docker_image`` to one built from
docker/runtime.Dockerfile; then nothing of the host but the run's three directories is mounted.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from trainarena.contract import SANDBOX_INPUTS, SANDBOX_OUTPUT, SANDBOX_SUBMISSION
from trainarena.execution.docker_cli import DockerCli

HOST_IMAGE_REPOSITORY = "trainarena-runtime-host"
ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Mount points every run uses; the interpreter's prefixes are made by docker as it binds them.
_MOUNT_POINTS = ("usr", "etc", "tmp", "proc", "sys", "dev", *(str(p).lstrip("/") for p in
                 (SANDBOX_SUBMISSION, SANDBOX_INPUTS, SANDBOX_OUTPUT)))


@dataclass(frozen=True)
class RootLayout:
    """What of the host's root a run's filesystem mirrors: ``links`` (name -> target, as on the
    host) go into the image; ``bound`` folders are real folders on the host, bound read-only."""

    links: tuple[tuple[str, str], ...]
    bound: tuple[str, ...]


def root_layout(root: Path = Path("/")) -> RootLayout:
    """/bin, /lib... of the host at ``root``: links into /usr on merged-/usr systems, else folders."""
    links, bound = [], []
    for name in ROOT_LINKS:
        path = root / name
        if path.is_symlink():
            links.append((name, os.readlink(path)))
        elif path.is_dir():
            bound.append(name)
    return RootLayout(tuple(links), tuple(bound))


def rootfs_tar(layout: RootLayout) -> bytes:
    """The image's whole root filesystem as a tar, byte for byte the same for the same layout."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted({*_MOUNT_POINTS, *layout.bound}):
            # /tmp as on any root: docker's tmpfs there takes its mode from the folder it covers.
            tar.addfile(_entry(name, tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755))
        for name, target in sorted(layout.links):
            entry = _entry(name, tarfile.SYMTYPE, 0o777)
            entry.linkname = target
            tar.addfile(entry)
    return buffer.getvalue()


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type, entry.mode, entry.mtime, entry.uid, entry.gid = kind, mode, 0, 0, 0
    return entry


@dataclass(frozen=True)
class HostImage:
    """The image for this host's layout: its tag (named by the digest of its tar) and its tar."""

    layout: RootLayout
    tar: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.tar).hexdigest()

    @property
    def tag(self) -> str:
        return f"{HOST_IMAGE_REPOSITORY}:{self.digest[:16]}"


def host_image(root: Path = Path("/")) -> HostImage:
    layout = root_layout(root)
    return HostImage(layout, rootfs_tar(layout))


def ensure_image(cli: DockerCli, image: HostImage) -> bool:
    """Make sure the daemon holds ``image`` (built from its tar when missing); True when it was built."""
    if cli.call("image", "inspect", "--format", "{{.Id}}", image.tag).returncode == 0:
        return False
    # Two platforms building at once import the same bytes under the same tag: harmless.
    cli.text("import", "--message", f"trainarena host runtime, rootfs sha256 {image.digest}", "-", image.tag,
             stdin=image.tar)
    return True
