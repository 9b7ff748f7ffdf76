from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models

from core import pii


class UserManager(BaseUserManager):
    def get_by_phone(self, phone: str):
        return self.get(phone_hash=pii.phone_index(phone))

    def create_user(self, phone: str, password: str | None = None, name: str = "", **extra):
        user = self.model(name=name, **extra)
        user.set_phone(phone)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """A person: a follower who signed up, or a member first known from a roster.

    Its id is the person id of the API (/me, member lists, election rolls). The phone is
    the login; it is stored encrypted and found through its blind index.
    """

    name = models.CharField(max_length=50, blank=True)
    phone_enc = models.BinaryField()
    phone_hash = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(auto_now_add=True)
    # Set when the person first signs in themselves; roster-created accounts start unclaimed.
    claimed_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "phone_hash"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    def set_phone(self, phone: str) -> None:
        self.phone_enc = pii.encrypt(phone)
        self.phone_hash = pii.phone_index(phone)

    @property
    def phone(self) -> str:
        return pii.decrypt(self.phone_enc)

    @property
    def phone_masked(self) -> str:
        return pii.mask_phone(self.phone)

    def __str__(self) -> str:
        return self.name or self.phone_masked

    def save(self, *args, **kwargs) -> None:
        # Here rather than in each view that changes a password (member end, console, admin,
        # `changepassword`): whoever learned the old password may hold a bearer token, and a new
        # password must shut them out wherever it was set. Sessions need nothing: Django's session
        # hash is derived from the password, so other sessions end by themselves.
        new_password = self._password is not None and self.pk is not None
        super().save(*args, **kwargs)
        if new_password:
            ApiToken.objects.filter(user_id=self.pk).delete()


class ApiToken(models.Model):
    """Bearer token; only its SHA-256 is stored, so a database leak yields no usable token."""

    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)


class RateCounter(models.Model):
    """A rate limit's count for one key (a hashed phone or address, or everyone), over a window that
    starts at the first hit and ends at `resets_at`. Counted by one upsert (accounts.ratelimit), so
    parallel requests cannot both see room for one more. Keys hold blind indexes, never raw values."""

    key = models.CharField(max_length=120, primary_key=True)
    # Milliseconds since the epoch: compared in plain SQL, the same on SQLite and PostgreSQL.
    resets_at = models.BigIntegerField(db_index=True)
    hits = models.IntegerField(default=0)


class SmsCode(models.Model):
    phone_hash = models.CharField(max_length=64, db_index=True)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)


class SmsOutbox(models.Model):
    """What the development SMS backend 'sent'; read by the dev-only inbox page."""

    phone_hash = models.CharField(max_length=64, db_index=True)
    phone_masked = models.CharField(max_length=20)
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
