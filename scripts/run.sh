#!/usr/bin/env bash
# One command: set up, create the SQLite database with the demo district, start the web server
# and the background worker, and print the URLs and demo logins.
#   scripts/run.sh            development server (runserver) on http://127.0.0.1:8000
#   PORT=9000 scripts/run.sh  another port
#   PROD=1 scripts/run.sh     gunicorn with DEBUG=0 (loopback, no HTTPS)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PORT=${PORT:-8000}
PY=.venv/bin/python
if [ "${PROD:-0}" = "1" ]; then
  # Production settings on loopback. No SMS gateway is reachable here, so SMS sign-in answers
  # "短信发送失败" (the app refuses to start on the development backend with debug off); sign in
  # with the demo password. Give UNIONHOME_SMS_* to use a real gateway.
  export DEBUG=0 UNIONHOME_HTTPS=0
  export SECRET_KEY=${SECRET_KEY:-$(cat var/secret_key 2>/dev/null || (head -c 48 /dev/urandom | base64 | tee var/secret_key))}
  export UNIONHOME_PII_KEY=${UNIONHOME_PII_KEY:-$(cat "$HOME/.config/unionhome/pii-dev.key" 2>/dev/null || (mkdir -p "$HOME/.config/unionhome" && head -c 32 /dev/urandom | base64 | tee "$HOME/.config/unionhome/pii-dev.key"))}
  export UNIONHOME_SMS_BACKEND=${UNIONHOME_SMS_BACKEND:-accounts.sms.AliyunSmsBackend}
  export UNIONHOME_SMS_GATEWAY_URL=${UNIONHOME_SMS_GATEWAY_URL:-http://127.0.0.1:9/}
  export UNIONHOME_SMS_ACCESS_KEY_ID=${UNIONHOME_SMS_ACCESS_KEY_ID:-none} UNIONHOME_SMS_ACCESS_KEY_SECRET=${UNIONHOME_SMS_ACCESS_KEY_SECRET:-none}
  export UNIONHOME_SMS_TEMPLATE_CODE=${UNIONHOME_SMS_TEMPLATE_CODE:-none}
else
  export DEBUG=${DEBUG:-1}  # the demo: development keys, the dev SMS inbox at /dev/sms/
fi
$PY manage.py migrate -v0
$PY manage.py seed_demo --members "${MEMBERS:-20000}" --seed 1
$PY manage.py demo_logins --base "http://127.0.0.1:$PORT"

$PY manage.py resume_imports >/dev/null  # an import whose worker died last time goes back in the queue
$PY manage.py db_worker --queue-name default >var/worker.log 2>&1 &
WORKER=$!
$PY manage.py run_schedule >var/schedule.log 2>&1 &  # closes polls/elections, draws, reminders, expiry
SCHEDULE=$!
trap 'kill $WORKER $SCHEDULE 2>/dev/null || true' EXIT INT TERM
if [ "${PROD:-0}" = "1" ]; then
  $PY manage.py collectstatic --noinput -v0
  .venv/bin/gunicorn config.wsgi -b "127.0.0.1:$PORT" -w "${WORKERS:-4}" --access-logfile -
else
  $PY manage.py runserver "127.0.0.1:$PORT"
fi
