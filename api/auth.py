"""JWT endpoints, throttled per client address (DESIGN §5)."""

from django.core.exceptions import ObjectDoesNotExist
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views


class _Throttled:
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


class TokenObtainView(_Throttled, jwt_views.TokenObtainPairView):
    """Exchange username (a paramedic's badge number) and password for tokens."""


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """simplejwt's, but a refresh token whose user was deleted is a 401, not a 500
    (simplejwt 5.5.1 looks the user up without catching DoesNotExist)."""

    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except ObjectDoesNotExist as exc:
            raise AuthenticationFailed(
                "No active account found for this token.", code="no_active_account"
            ) from exc


class TokenRefreshView(_Throttled, jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted."""

    serializer_class = TokenRefreshSerializer


class TokenBlacklistView(_Throttled, jwt_views.TokenBlacklistView):
    """Log out: blacklist a refresh token."""
