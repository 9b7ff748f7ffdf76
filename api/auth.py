from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.services import user_for_token


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        seen = getattr(request, "_token_user", None)  # looked up already by the idempotency middleware
        user = seen[1] if seen and seen[0].endswith(token) else user_for_token(token)
        if user is not None:
            request.user = user
            request.bearer_token = token  # what /auth/token/revoke ends
        return user
