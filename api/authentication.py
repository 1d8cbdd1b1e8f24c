"""Authentication for the API (kept apart from api.auth, whose views DRF's
settings import: defining this class there would be a circular import)."""

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication as jwt_authentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password


def session_is_current(token, user) -> bool:
    """False for a token issued before the user's password last changed (design §16).

    With CHECK_REVOKE_TOKEN simplejwt writes a hash of the password hash into
    every token it issues (REVOKE_TOKEN_CLAIM); a password change or reset
    changes it, which ends every refresh and access token issued before.
    """
    return token.get(api_settings.REVOKE_TOKEN_CLAIM) == get_md5_hash_password(user.password)


class JWTAuthentication(jwt_authentication.JWTAuthentication):
    """simplejwt's, loading the user together with its paramedic profile.

    Nearly every request asks "is this a paramedic, and which one?": one query
    instead of two. Mirrors simplejwt 5.5.1's get_user (the user, whether it is
    active, whether the password changed since the token was issued).
    """

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        try:
            user = self.user_model.objects.select_related("paramedic").get(
                **{api_settings.USER_ID_FIELD: user_id}
            )
        except self.user_model.DoesNotExist as exc:
            raise AuthenticationFailed("User not found", code="user_not_found") from exc
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if not session_is_current(validated_token, user):
            raise AuthenticationFailed(
                "The user's password has changed; log in again.", code="password_changed"
            )
        return user
