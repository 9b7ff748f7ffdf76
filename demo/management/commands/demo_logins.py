import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the URLs of the four ends and the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--base", default="http://127.0.0.1:8000")

    def handle(self, *args, base, **options):
        path = Path(settings.VAR_DIR) / "demo-credentials.json"
        if not path.exists():
            self.stdout.write("No demo data yet: run `manage.py seed_demo` first.")
            return
        c = json.loads(path.read_text(encoding="utf-8"))
        w = self.stdout.write
        w("")
        w("UnionHome 网上职工之家 is running:")
        w(f"  门户网站 portal            {base}/")
        w(f"  会员服务 member end (H5)    {base}/m/")
        w(f"  干部OA  cadre end (H5)     {base}/c/")
        w(f"  管理平台 console            {base}/console/")
        w(f"  API docs                   {base}/api/v1/docs")
        if settings.UNIONHOME_DEV_INBOX:
            w(f"  开发短信收件箱 dev SMS inbox  {base}/dev/sms/")
        w("")
        w(f"Demo logins (password for all: {c['password']}):")
        w(f"  区总工会管理员 district admin   {c['district_admin']['phone']}")
        for cadre in c["cadres"][:2]:
            w(f"  街道/镇干部 street cadre ({cadre['role']})  {cadre['phone']}")
        if c["members"]:
            w(f"  会员 member                     {c['members'][0]['phone']}")
        if c["followers"]:
            w(f"  粉丝 follower                   {c['followers'][0]['phone']}")
        for v in c.get("verifiers", [])[:1]:
            w(f"  商户核销员 merchant verifier    {v['phone']}  (cadre end: pickup codes only)")
        w(f"  All logins: {path}")
        w("  Console admins also enter a 6-digit code from an authenticator app (enrol at first sign-in);")
        w("  for the demo, `.venv/bin/python manage.py demo_totp <phone>` prints the current one.")
        w("")
