"""JWT endpoints, throttled per client address (DESIGN §5)."""

from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt import views as jwt_views


class _Throttled:
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


class TokenObtainView(_Throttled, jwt_views.TokenObtainPairView):
    """Exchange username (a paramedic's badge number) and password for tokens."""


class TokenRefreshView(_Throttled, jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted."""


class TokenBlacklistView(_Throttled, jwt_views.TokenBlacklistView):
    """Log out: blacklist a refresh token."""
