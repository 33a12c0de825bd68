#!/bin/sh
# The training image's entry point: run the command as the owner of the mounted project (/app), so that the store, the
# runs and the notebooks it writes belong to that user on the host. Never runs training as root.
set -eu
if [ "$(id -u)" != 0 ]; then exec "$@"; fi  # started with --user: run as asked
uid="$(stat -c %u /app)"; gid="$(stat -c %g /app)"
if [ "$uid" = 0 ]; then
  echo "error: /app is owned by root; mount a project directory owned by an ordinary user, or start with --user UID:GID" >&2
  exit 2
fi
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all -- "$@"
