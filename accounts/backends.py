from core import phones, pii

from .models import User


class PhonePasswordBackend:
    """Sign in with a mainland mobile number and password; the phone is looked up by its blind index."""

    def authenticate(self, request, phone: str | None = None, password: str | None = None, **kwargs):
        if not phone or not password:
            return None
        try:
            user = User.objects.get(phone_hash=pii.phone_index(phones.normalize(phone)))
        except User.DoesNotExist:
            User().set_password(password)  # same cost as a real check: no timing oracle for unknown phones
            return None
        if user.is_active and user.check_password(password):
            return user
        return None

    def get_user(self, user_id):
        try:
            return User.objects.get(pk=user_id, is_active=True)
        except User.DoesNotExist:
            return None
