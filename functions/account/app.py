"""Account: the account page, upcoming charges, activity, cancel and reactivate the subscription."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.usecases import account
from lifecycle.usecases.requests import Cancel, Reactivate
from lifecycle.usecases.services import services
from lifecycle.usecases.views import AccountView, ActivityView, QuoteView, UpcomingCharges

app = resolver()


@app.get("/v1/account")
def get_account() -> AccountView:
    return account.get_account(services(), current_caller(app))


@app.get("/v1/account/upcoming-charges")
def upcoming_charges(days: Annotated[int, Query(ge=1, le=62)] = 31) -> UpcomingCharges:
    return account.upcoming_charges(services(), current_caller(app), days)


@app.post("/v1/account/cancel")
def cancel_account(body: Cancel) -> AccountView:
    return account.cancel_account(services(), current_caller(app), body.reason, body.comment)


@app.get("/v1/account/reactivation-quote")
def reactivation_quote() -> QuoteView:
    return account.account_reactivation_quote(services(), current_caller(app))


@app.post("/v1/account/reactivate")
def reactivate_account(body: Annotated[Reactivate | None, Body()] = None) -> AccountView:
    return account.reactivate_account(
        services(), current_caller(app), body.quote_id if body else None
    )


@app.get("/v1/account/activity")
def activity() -> ActivityView:
    return account.activity(services(), current_caller(app))


lambda_handler = api(app)
