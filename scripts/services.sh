#!/usr/bin/env bash
# Throw-away team services on 127.0.0.1 for the end-to-end tests: a PostgreSQL cluster (own port and
# data dir) and an MLflow tracking server on it with proxied artifacts.
#   eval "$(bash scripts/services.sh start <dir>)"   # prints `export SENTIMENT_TEST_MLFLOW_URI=…`
#   bash scripts/services.sh stop <dir>
#   bash scripts/services.sh stop-mlflow <dir> / start-mlflow <dir>   # only the tracking server (same port, same data)
set -euo pipefail
cmd=$1; dir=$(realpath -m "$2")
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || command -v initdb)")
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_mlflow() {
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false nohup mlflow server --workers 1 --host 127.0.0.1 --port "$mlport" \
    --backend-store-uri "postgresql+psycopg2://mlflow@127.0.0.1:$pgport/mlflow" \
    --artifacts-destination "$dir/artifacts" --allowed-hosts "127.0.0.1:*,localhost:*" >>"$dir/mlflow.log" 2>&1 &
  echo $! >"$dir/mlflow.pid"
  for _ in $(seq 120); do curl -sf "http://127.0.0.1:$mlport/health" >/dev/null && break; sleep 0.5; done
  curl -sf "http://127.0.0.1:$mlport/health" >/dev/null || { tail -30 "$dir/mlflow.log" >&2; exit 1; }
}
case "$cmd" in
start)
  mkdir -p "$dir"; [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  pgport=$(free_port); mlport=$(free_port)
  as_pg "$pgbin/initdb" -D "$dir/pg" -U mlflow --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
  as_pg "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -o "-p $pgport -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
  as_pg "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U mlflow -d postgres -qc "CREATE DATABASE mlflow" >/dev/null
  mkdir -p "$dir/artifacts"; echo "$pgport" >"$dir/pg.port"; echo "$mlport" >"$dir/mlflow.port"
  start_mlflow
  echo "export SENTIMENT_TEST_MLFLOW_URI=http://127.0.0.1:$mlport SENTIMENT_TEST_SERVICES_DIR=$dir"
  ;;
start-mlflow)
  pgport=$(cat "$dir/pg.port"); mlport=$(cat "$dir/mlflow.port"); start_mlflow
  ;;
stop-mlflow)
  kill "$(cat "$dir/mlflow.pid")" 2>/dev/null || true
  for _ in $(seq 60); do curl -sf "http://127.0.0.1:$(cat "$dir/mlflow.port")/health" >/dev/null || break; sleep 0.5; done
  ;;
stop)
  [ -f "$dir/mlflow.pid" ] && { kill "$(cat "$dir/mlflow.pid")" 2>/dev/null || true; }
  [ -d "$dir/pg" ] && as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
  ;;
esac
