#!/usr/bin/env bash
# One command: set up and run every test — lint, migrations check, the suite on SQLite, the suite
# again on PostgreSQL (the server named by DATABASE_URL, or one started here on loopback from
# Debian's packages), browser tests in headless Chromium. Extra arguments go to pytest
# (e.g. scripts/test.sh -k import).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v msgfmt >/dev/null 2>&1 || need_apt+=(gettext)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need_apt+=(postgresql)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need_apt+=(fonts-noto-cjk)  # Chinese glyphs in screenshots
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== Installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

scripts/setup.sh --dev
PY=.venv/bin/python

echo "== ruff"
.venv/bin/ruff check --output-format concise .
echo "== migrations are complete"
DJANGO_SETTINGS_MODULE=config.test_settings $PY manage.py makemigrations --check --dry-run >/dev/null

PG_URL=${DATABASE_URL:-}
status=0
echo "== tests on SQLite"
DATABASE_URL= $PY -m pytest -q "$@" || status=$?

echo "== tests on PostgreSQL"
if [ -z "$PG_URL" ]; then
  eval "$(scripts/pg.sh start)"
  PG_URL=$DATABASE_URL
fi
DATABASE_URL=$PG_URL $PY -m pytest -q "$@" || status=$?
exit $status
