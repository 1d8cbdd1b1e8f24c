"""JWT endpoints (design §5, §16).

- Obtain: throttled per client address and, for failed logins, per account.
- Refresh: one refresh token buys exactly one new pair, also when the same token
  is sent twice at once: the old token is blacklisted by an INSERT that the
  database's unique constraint lets succeed only once, in the same transaction
  that issues the new pair. Tokens of a user whose password changed since they
  were issued (api.authentication.session_is_current), or who was deactivated,
  are refused.
- Logout (blacklist) ends a refresh token; its access tokens lapse within
  JWT_ACCESS_MINUTES (docs/decisions.md).
- Every token says which paramedic its user is (claim `paramedic_id`), and
  `GET /me` answers who the caller is, so a device needs no other lookup.
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from core.roles import paramedic_of, roles_of

from .authentication import session_is_current
from .throttling import LoginFailures, ScopedClientThrottle

PARAMEDIC_CLAIM = "paramedic_id"


class _ParamedicClaim(Token):
    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        paramedic = paramedic_of(user)
        token[PARAMEDIC_CLAIM] = str(paramedic.pk) if paramedic else None
        return token


class SessionToken(RefreshToken, _ParamedicClaim):
    """A refresh token whose access tokens (which copy its claims) name the user's
    paramedic profile, or null: a device learns its own id from its login.

    The claim is added below simplejwt's blacklist mixin (the method order is
    SessionToken, RefreshToken, BlacklistMixin, _ParamedicClaim, Token), so the
    outstanding-token row it writes holds the token as issued, claim included."""


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    token_class = SessionToken


class _Throttled:
    throttle_classes = [ScopedClientThrottle]
    throttle_scope = "auth"


class TokenPairSerializer(serializers.Serializer):
    """What the obtain and refresh endpoints answer."""

    access = serializers.CharField(help_text="Bearer token for the API; short-lived.")
    refresh = serializers.CharField(help_text="Spend once at /auth/token/refresh/ for a new pair.")


class RefreshTokenSerializer(serializers.Serializer):
    refresh = serializers.CharField()


@extend_schema_view(
    post=extend_schema(
        operation_id="obtain_token",
        summary="Log in: username (a paramedic's badge number) and password for a token pair",
        description=(
            "401 `no_active_account` for wrong credentials (or an inactive account). "
            "Throttled per client address, and after LOGIN_MAX_FAILURES failed logins per "
            "account (429 with Retry-After). The tokens carry the claim `paramedic_id`: the "
            "caller's paramedic profile, or null (as `GET /me` answers)."
        ),
        responses={200: TokenPairSerializer},
    )
)
class TokenObtainView(_Throttled, jwt_views.TokenObtainPairView):
    """Exchange username (a paramedic's badge number) and password for tokens."""

    serializer_class = TokenObtainPairSerializer

    def post(self, request, *args, **kwargs):
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(username, str):
            return super().post(request, *args, **kwargs)  # answered as invalid input
        LoginFailures.check(username)
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            LoginFailures.record(username)
            raise
        LoginFailures.clear(username)
        return response


def _session_user(token: RefreshToken):
    """The active user a refresh token belongs to, if its session is still current."""
    user_id = token.payload.get(api_settings.USER_ID_CLAIM)
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
    if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
        raise AuthenticationFailed(
            "No active account found for this token.", code="no_active_account"
        )
    if not session_is_current(token, user):
        raise AuthenticationFailed(
            "The user's password has changed; log in again.", code="password_changed"
        )
    return user


class TokenRefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(write_only=True)
    access = serializers.CharField(read_only=True)

    def validate(self, attrs):
        old = RefreshToken(attrs["refresh"])  # signature, expiry, type, blacklist
        user = _session_user(old)
        jti = old[api_settings.JTI_CLAIM]
        try:
            with transaction.atomic():
                outstanding, _ = OutstandingToken.objects.get_or_create(
                    jti=jti,
                    defaults={
                        "user": user,
                        "token": str(old),
                        "expires_at": datetime_from_epoch(old["exp"]),
                    },
                )
                # The arbiter: one blacklist row per token (a one-to-one field).
                BlacklistedToken.objects.create(token=outstanding)
                new = SessionToken.for_user(user)
        except IntegrityError as exc:
            raise InvalidToken("Token is blacklisted") from exc
        return {"access": str(new.access_token), "refresh": str(new)}


@extend_schema_view(
    post=extend_schema(
        operation_id="refresh_token",
        summary="Spend a refresh token for a new pair",
        description=(
            "The refresh token is spent: sending it again is 401 `token_not_valid`. A token "
            "issued before the user's password changed is 401 `password_changed`."
        ),
        request=RefreshTokenSerializer,
        responses={200: TokenPairSerializer},
    )
)
class TokenRefreshView(_Throttled, jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted."""

    serializer_class = TokenRefreshSerializer


@extend_schema_view(
    post=extend_schema(
        operation_id="revoke_token",
        summary="Log out: the refresh token can no longer be spent",
        description="Its access tokens lapse within JWT_ACCESS_MINUTES.",
        request=RefreshTokenSerializer,
        responses={200: OpenApiResponse(description="Revoked; the body is an empty object.")},
    )
)
class TokenBlacklistView(_Throttled, jwt_views.TokenBlacklistView):
    """Log out: blacklist a refresh token."""


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(
        child=serializers.ChoiceField(
            choices=["supervisor", "paramedic", "service", "doctor", "hospital"]
        ),
        help_text="Every role the caller holds, most powerful first.",
    )
    paramedic = serializers.UUIDField(
        allow_null=True,
        help_text="The caller's paramedic profile (the id every device route takes), or null.",
    )


class MeView(APIView):
    """Who the caller is: a device's first call after login (or read `paramedic_id`
    from the token itself)."""

    @extend_schema(
        operation_id="get_me",
        summary="Who the caller is: username, roles and paramedic profile",
        responses={200: MeSerializer},
    )
    def get(self, request):
        paramedic = paramedic_of(request.user)
        return Response(
            MeSerializer(
                {
                    "username": request.user.get_username(),
                    "roles": roles_of(request.user),
                    "paramedic": paramedic.pk if paramedic else None,
                }
            ).data
        )
