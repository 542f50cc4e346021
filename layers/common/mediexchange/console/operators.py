"""The console's operators in AWS: a Cognito user pool of admin-created users, asked through its app client.

Only the calls a sign-in needs, all of them public Cognito API calls authenticated by the user's own
password (no IAM permission is involved): `InitiateAuth` with USER_PASSWORD_AUTH, the answer to its
NEW_PASSWORD_REQUIRED challenge (`RespondToAuthChallenge`), and `GetUser` with the access token it
returned, to learn the user's canonical name. The tokens themselves are not kept: the console's own
session (`store.sessions`) is what the cookie names.

Every refusal looks the same to the caller (wrong password, unknown user, disabled user): the app
client's PreventUserExistenceErrors (template.yaml) makes Cognito answer alike as well.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError


class Refusal(enum.Enum):
    WRONG = "refused"  # wrong user name or password, unknown, disabled or reset user: one answer for all
    NEW_PASSWORD = "new_password"  # noqa: S105 - a reason, not a password; Cognito asks for a new password (first sign-in with a temporary one)
    WEAK_PASSWORD = "password_policy"  # noqa: S105 - a reason, not a password; the new password does not meet the pool's policy
    BUSY = "busy"  # Cognito throttled the attempt (or is unavailable): try again later


@dataclass(frozen=True, slots=True)
class SignedIn:
    username: str


# Cognito's error codes for a sign-in it refuses, and what the console answers to each.
_REFUSALS = {
    "NotAuthorizedException": Refusal.WRONG,
    "UserNotFoundException": Refusal.WRONG,
    "PasswordResetRequiredException": Refusal.WRONG,
    "UserNotConfirmedException": Refusal.WRONG,
    "InvalidPasswordException": Refusal.WEAK_PASSWORD,
    "TooManyRequestsException": Refusal.BUSY,
    "TooManyFailedAttemptsException": Refusal.BUSY,
    "LimitExceededException": Refusal.BUSY,
    "InternalErrorException": Refusal.BUSY,
}


class Operators:
    """The user pool's app client (no secret) in `region`; `client` for tests (moto's, a Stubber's)."""

    def __init__(self, region: str, client_id: str, client: Any = None) -> None:
        self.client_id = client_id
        self.client = client or boto3.session.Session(region_name=region).client("cognito-idp")

    def sign_in(self, username: str, password: str, new_password: str = "") -> SignedIn | Refusal:
        """USER_PASSWORD_AUTH; a NEW_PASSWORD_REQUIRED challenge is answered with `new_password` when one
        is given, else reported (the form then asks for one and sends all three fields again)."""
        if not username or not password:
            return Refusal.WRONG
        try:
            answer = self.client.initiate_auth(
                ClientId=self.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
            if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
                if not new_password:
                    return Refusal.NEW_PASSWORD
                answer = self.client.respond_to_auth_challenge(
                    ClientId=self.client_id,
                    ChallengeName="NEW_PASSWORD_REQUIRED",
                    Session=answer["Session"],
                    ChallengeResponses={
                        "USERNAME": answer.get("ChallengeParameters", {}).get("USER_ID_FOR_SRP") or username,
                        "NEW_PASSWORD": new_password,
                    },
                )
            result = answer.get("AuthenticationResult")
            if not result:  # another challenge (MFA, which the pool does not configure): not for this console
                return Refusal.WRONG
            user = self.client.get_user(AccessToken=result["AccessToken"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "InvalidParameterException" and new_password:
                return Refusal.WEAK_PASSWORD  # Cognito's answer to a new password outside its constraints
            if code in _REFUSALS:
                return _REFUSALS[code]
            raise
        return SignedIn(str(user["Username"]))
