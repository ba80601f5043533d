"""Users: list them; invite, grant or revoke billing access, remove (billing users only)."""

from aws_lambda_powertools.event_handler import Response

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.usecases import users
from lifecycle.usecases.requests import InviteUser, UpdateUser
from lifecycle.usecases.services import services
from lifecycle.usecases.views import UserPage, UserView

app = resolver()


@app.get("/v1/account/users")
def list_users() -> UserPage:
    return users.list_users(services(), current_caller(app))


@app.post(
    "/v1/account/users",
    responses={
        201: {
            "description": "Invited: Cognito emails a temporary password.",
            "content": {"application/json": {"model": UserView}},
        }
    },
)
def invite_user(body: InviteUser) -> Response[UserView]:
    invited = users.invite_user(services(), current_caller(app), body.email, body.billing_access)
    return Response(status_code=201, body=invited, content_type="application/json")


@app.put("/v1/account/users/<user_id>")
def update_user(user_id: str, body: UpdateUser) -> UserView:
    return users.update_user(services(), current_caller(app), user_id, body.billing_access)


@app.delete(
    "/v1/account/users/<user_id>",
    responses={204: {"description": "Removed: the user can no longer sign in."}},
)
def remove_user(user_id: str) -> Response[None]:
    users.remove_user(services(), current_caller(app), user_id)
    return Response(status_code=204, body=None)


lambda_handler = api(app)
