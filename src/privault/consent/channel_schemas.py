"""Request and response shapes of the channel-consent and newsletter API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool


class ChannelsOut(BaseModel):
    #: Every channel (newsletter, marketing_email, marketing_post, third_party) and its state.
    channels: dict[str, bool]


class ChannelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The channels to set; those not named stay as they are.
    channels: dict[str, StrictBool] = Field(max_length=10)


class SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=254)
    name: str | None = Field(default=None, max_length=100)


class SubscribeOut(BaseModel):
    status: Literal["check_your_inbox"] = "check_your_inbox"
    detail: str = (
        "If the address can receive our mail, a confirmation link is on its way: "
        "nothing is sent until it is followed."
    )
