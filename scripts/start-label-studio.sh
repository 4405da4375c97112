#!/usr/bin/env bash
# Start a local, headless Label Studio for the govfacts annotator loop (docs/annotator-guide.md).
#
#   LABEL_STUDIO_USERNAME=you@example.org LABEL_STUDIO_PASSWORD=... LABEL_STUDIO_USER_TOKEN=<up to 40 chars> \
#     bash scripts/start-label-studio.sh            # start in the background, wait until it answers
#   bash scripts/start-label-studio.sh stop       # stop the server this script started
#   bash scripts/start-label-studio.sh install    # only create .venv-studio/ and its empty database (scripts/test.sh does this early)
#
# Environment: LABEL_STUDIO_USERNAME / LABEL_STUDIO_PASSWORD (the account created on first start),
# LABEL_STUDIO_USER_TOKEN (its API token; use it as LABEL_STUDIO_API_KEY for govfacts), LS_PORT (8080),
# LABEL_STUDIO_BASE_DATA_DIR (default .studio-data/ in the repository). Label Studio lives in its own
# virtualenv .venv-studio/ (created on first use: python3 -m venv + pip install label-studio).
# The server binds 127.0.0.1 only. Because the govfacts ML backend also runs on 127.0.0.1, the
# server is started with ML_BLOCK_LOCAL_IP=false and SSRF_PROTECTION_ENABLED=false (local ML backend
# and its training webhook); override them in the environment if you do not need that.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${LS_PORT:-${PORT:-8080}}
DATA=${LABEL_STUDIO_BASE_DATA_DIR:-$ROOT/.studio-data}
PIDFILE=$DATA/label-studio.pid
LOG=$DATA/label-studio.log
VENV=${LABEL_STUDIO_VENV:-$ROOT/.venv-studio}

if [ "${1:-start}" = "stop" ]; then
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill -- "-$(cat "$PIDFILE")" 2>/dev/null || kill "$(cat "$PIDFILE")"
    rm -f "$PIDFILE"
    echo "Label Studio stopped"
  else
    echo "no running Label Studio started from $DATA" >&2
  fi
  exit 0
fi

install_studio() {
  if [ ! -x "$VENV/bin/label-studio" ]; then
    echo "creating $VENV (pip install label-studio) ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >&2
    "$VENV/bin/pip" install -q label-studio >&2 || { rm -rf "$VENV"; return 1; }
  fi
}

# A new data dir starts from a copy of an empty database that already has Label Studio's migrations applied:
# applying them takes about 70 s of CPU, copying the result well under one. The copy is made once per installed
# Label Studio version (any Label Studio command applies the migrations first; `version` then only prints).
# Every data dir still gets its own secret key and account on its first start. Only for the default SQLite
# database in the data dir: with another DJANGO_DB or a DATABASE_NAME, Label Studio's own start-up is left alone.
EMPTY_DB_ROOT=$VENV/govfacts-empty-db
uses_default_db() { [ "${DJANGO_DB:-sqlite}" = sqlite ] && [ -z "${DATABASE_NAME:-}" ]; }
EMPTY_DB=  # its path for the installed version, asked of Label Studio once
find_empty_db() {
  [ -n "$EMPTY_DB" ] && return 0
  local version
  version=$("$VENV/bin/python" -c 'import label_studio; print(label_studio.__version__)') || return 1
  EMPTY_DB=$EMPTY_DB_ROOT/$version/label_studio.sqlite3
}
prepare_empty_db() {
  uses_default_db || return 0
  find_empty_db || return 0
  local dest=$EMPTY_DB tmp
  [ -f "$dest" ] && return 0
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp -d "$EMPTY_DB_ROOT/.building.XXXXXX")
  if LABEL_STUDIO_BASE_DATA_DIR="$tmp" "$VENV/bin/label-studio" version --data-dir "$tmp" >"$tmp/migrate.log" 2>&1 \
      && [ -f "$tmp/label_studio.sqlite3" ]; then
    mv "$tmp/label_studio.sqlite3" "$dest"  # same file system: atomic, a concurrent start sees all or nothing
  else
    echo "warning: could not prepare an empty Label Studio database (first starts will apply the migrations):" >&2
    tail -n 5 "$tmp/migrate.log" >&2 || true
  fi
  rm -rf "$tmp"
}
seed_data_dir() {
  uses_default_db || return 0
  [ -e "$DATA/label_studio.sqlite3" ] && return 0
  find_empty_db || return 0
  [ -f "$EMPTY_DB" ] || return 0
  cp "$EMPTY_DB" "$DATA/.label_studio.sqlite3.tmp" && mv "$DATA/.label_studio.sqlite3.tmp" "$DATA/label_studio.sqlite3"
}

if [ "${1:-start}" = "install" ]; then
  install_studio && prepare_empty_db
  exit $?
fi

for v in LABEL_STUDIO_USERNAME LABEL_STUDIO_PASSWORD LABEL_STUDIO_USER_TOKEN; do
  if [ -z "${!v:-}" ]; then
    echo "error: environment variable $v is not set (see the header of $0)" >&2
    exit 2
  fi
done
if [ ${#LABEL_STUDIO_USER_TOKEN} -gt 40 ]; then
  echo "error: LABEL_STUDIO_USER_TOKEN must be at most 40 characters" >&2
  exit 2
fi

install_studio
[ -e "$DATA/label_studio.sqlite3" ] || prepare_empty_db  # a data dir in use never waits for it

mkdir -p "$DATA"
# A data dir keeps the account it was created with: Label Studio ignores a new password or token for it.
# Its user and a hash of its token are noted at the first start, so a second start with other credentials
# says so at once instead of starting a server that rejects them.
CRED=$DATA/govfacts-account
token_hash=$(printf '%s' "$LABEL_STUDIO_USER_TOKEN" | sha256sum | cut -c1-16)
if [ -f "$CRED" ]; then
  read -r old_user old_hash < "$CRED"
  if [ "$old_user" != "$LABEL_STUDIO_USERNAME" ] || [ "$old_hash" != "$token_hash" ]; then
    echo "error: the Label Studio data dir $DATA was set up for $old_user with another token; Label Studio" >&2
    echo "  would reject these credentials. Use that account's LABEL_STUDIO_USERNAME and LABEL_STUDIO_USER_TOKEN" >&2
    echo "  (the token shown in Label Studio under Account & Settings), or start fresh with a new data dir:" >&2
    echo "  LABEL_STUDIO_BASE_DATA_DIR=<new folder>, or remove $DATA (all its projects and annotations go)." >&2
    exit 2
  fi
fi
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "Label Studio already running (pid $(cat "$PIDFILE")) on http://127.0.0.1:$PORT" >&2
  exit 0
fi

seed_data_dir
export LABEL_STUDIO_BASE_DATA_DIR=$DATA
export LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true
export LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=${LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK:-true}
export ML_BLOCK_LOCAL_IP=${ML_BLOCK_LOCAL_IP:-false}
export SSRF_PROTECTION_ENABLED=${SSRF_PROTECTION_ENABLED:-false}
export LABEL_STUDIO_USERNAME LABEL_STUDIO_PASSWORD LABEL_STUDIO_USER_TOKEN

# own session (setsid): `stop` ends the server and its children by process group, nothing else
setsid "$VENV/bin/label-studio" start --no-browser --host 127.0.0.1 --internal-host 127.0.0.1 --port "$PORT" \
  --data-dir "$DATA" >"$LOG" 2>&1 < /dev/null &
echo $! > "$PIDFILE"

for _ in $(seq 1 "${LABEL_STUDIO_START_TIMEOUT:-120}"); do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "error: Label Studio exited during start-up; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    rm -f "$PIDFILE"
    exit 1
  fi
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" 2>/dev/null; then
    [ -f "$CRED" ] || printf '%s %s\n' "$LABEL_STUDIO_USERNAME" "$token_hash" > "$CRED"
    echo "Label Studio is up on http://127.0.0.1:$PORT (pid $(cat "$PIDFILE"), data $DATA, log $LOG)"
    echo "  export LABEL_STUDIO_URL=http://127.0.0.1:$PORT LABEL_STUDIO_API_KEY=\$LABEL_STUDIO_USER_TOKEN"
    exit 0
  fi
  sleep 1
done
echo "error: Label Studio did not answer on http://127.0.0.1:$PORT within ${LABEL_STUDIO_START_TIMEOUT:-120}s; see $LOG" >&2
exit 1
