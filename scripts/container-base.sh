#!/usr/bin/env bash
# Make sure the image the Dockerfile starts from, python:3.11-slim, is in the local image store.
# It is pulled when a registry answers; where none is reachable (as on the project's CI machines), a stand-in is built
# from Debian bookworm's own Python 3.11 with debootstrap and tagged with the same name. Only the local store is touched.
#   usage: bash scripts/container-base.sh [podman|docker]
set -euo pipefail
engine="${1:-podman}"
image="docker.io/library/python:3.11-slim"
if "$engine" image exists "$image" 2>/dev/null || "$engine" image inspect "$image" >/dev/null 2>&1; then exit 0; fi
if timeout 60 "$engine" pull -q "$image" >/dev/null 2>&1; then exit 0; fi
echo "no registry answered: building a stand-in for $image from Debian bookworm (debootstrap)" >&2
root="$(mktemp -d /var/tmp/python-slim.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
  bookworm "$root" http://deb.debian.org/debian >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | "$engine" import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
echo "built $image (stand-in): $("$engine" image inspect "$image" --format '{{.Size}}') bytes" >&2
