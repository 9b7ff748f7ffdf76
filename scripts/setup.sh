#!/usr/bin/env bash
# Set up everything the platform needs on a fresh machine: Python 3.12+ venv, Python packages,
# front-end assets from npm (vendored into static/vendor), compiled translations, database schema.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for cand in python3.14 python3.13 python3.12 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  # pyenv installs 3.12 beside the default 3.11; its shim works only when the version is selected.
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])' | sort -V); do
      if PYENV_VERSION="$v" pyenv which python >/dev/null 2>&1; then
        PYENV_VERSION="$v" pyenv which python; return 0
      fi
    done
  fi
  return 1
}

if [ ! -x .venv/bin/python ]; then
  PY=$(find_python) || { echo "UnionHome needs Python 3.12 or newer (Django 6). Install it (e.g. 'pyenv install 3.12') and run again." >&2; exit 1; }
  echo "== Python: $PY ($("$PY" --version))"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
REQ=requirements.txt
[ "${1:-}" = "--dev" ] && REQ=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)-$(basename $REQ)"
if [ ! -f "$stamp" ]; then
  echo "== Python packages ($REQ)"
  .venv/bin/python -m pip install -q -r "$REQ" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import django, treebeard, python_calamine" || { echo "pip install failed" >&2; exit 1; }
  touch "$stamp"
fi

# Chinese glyphs for PDF reports (election results via fpdf2): Debian's fonts-noto-cjk, or UNIONHOME_CJK_FONT.
if [ -z "${UNIONHOME_CJK_FONT:-}" ] && ! ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || command -v sudo >/dev/null 2>&1; }; then
    echo "== CJK font for PDF reports (fonts-noto-cjk)"
    { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; }; } \
      || echo "warning: fonts-noto-cjk not installed; PDF reports need a CJK font (or set UNIONHOME_CJK_FONT)" >&2
  else
    echo "warning: no CJK font; install fonts-noto-cjk or set UNIONHOME_CJK_FONT for PDF reports" >&2
  fi
fi

# Front-end assets come from the npm registry and are served by the app (no CDN at run time).
if [ ! -f static/vendor/.stamp ] || [ assets/package.json -nt static/vendor/.stamp ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is needed for front-end assets: apt-get install -y nodejs npm" >&2; exit 1; }
  echo "== Front-end assets (npm)"
  (cd assets && npm ci --no-audit --no-fund --silent)
  rm -rf static/vendor && mkdir -p static/vendor
  cp assets/node_modules/weui/dist/style/weui.min.css static/vendor/
  cp assets/node_modules/htmx.org/dist/htmx.min.js static/vendor/
  cp assets/node_modules/echarts/dist/echarts.min.js static/vendor/
  cp assets/node_modules/hls.js/dist/hls.min.js assets/node_modules/hls.js/dist/hls.min.js.map static/vendor/  # the live player where HLS isn't native (its source map too: collectstatic follows the reference)
  cp assets/node_modules/jsqr/dist/jsQR.js static/vendor/        # camera QR decoding on the check-in page
  touch static/vendor/.stamp
fi

# The compiled .mo files are committed; recompile when gettext is here so edited .po files count.
if ls locale/*/LC_MESSAGES/django.po >/dev/null 2>&1 && command -v msgfmt >/dev/null 2>&1; then
  DJANGO_SETTINGS_MODULE=config.test_settings .venv/bin/python manage.py compilemessages -v0 --ignore=.venv --ignore=assets
fi
