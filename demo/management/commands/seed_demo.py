import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from demo import district
from orgs.models import Org

DEFAULT_PASSWORD = "Union@2026"


class Command(BaseCommand):
    help = "Build the demo district (deterministic for a seed) and write the demo logins as JSON."

    def add_arguments(self, parser):
        parser.add_argument(
            "--members", type=int, default=20_000, help="certified members (default 20,000; up to 200,000)"
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--credentials-out", default=str(settings.VAR_DIR / "demo-credentials.json"))
        parser.add_argument("--password", default=DEFAULT_PASSWORD)

    def handle(self, *args, members, seed, credentials_out, password, **options):
        saved = Path(settings.VAR_DIR) / "demo-credentials.json"
        out = Path(credentials_out)
        if Org.objects.exists():
            # A second run changes nothing; it hands back the logins of the first one where it has them.
            if saved.exists() and out.resolve() != saved.resolve():
                out.write_text(saved.read_text(encoding="utf-8"), encoding="utf-8")
            self.stdout.write(self.style.WARNING("数据库中已有组织数据，seed_demo 不再重复生成（未做任何修改）。"))
            return
        if not 1 <= members <= 500_000:
            self.stderr.write("--members 应在 1 到 500000 之间")
            raise SystemExit(2)
        started = time.monotonic()
        creds = district.seed(members, seed, password, progress=lambda m: self.stdout.write(f"  {m}"))
        if connection.vendor == "postgresql":
            # Fresh statistics for the planner: until autovacuum comes round (and never, for rows of a
            # transaction not yet committed) it would plan for empty tables — a scan of every member
            # where an index lookup was meant.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        payload = json.dumps(creds.as_dict(), ensure_ascii=False, indent=1)
        for path in {out, saved}:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(payload, encoding="utf-8")
            path.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(f"演示区县已生成，用时 {time.monotonic() - started:.1f} 秒；登录信息写入 {out}")
        )
