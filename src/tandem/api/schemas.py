"""Request bodies of the API. Every model refuses unknown fields, and free text has a 4 KB ceiling."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

TEXT_LIMIT = 4096

Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_LIMIT)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Channel = Literal["chat", "voice", "sms", "api"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(Strict):
    id: Id | None = None
    name: Short | None = None
    phone: Annotated[str, StringConstraints(min_length=3, max_length=32)] | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] | None = None


class StartInteraction(Strict):
    channel: Channel
    customer: CustomerIn = Field(default_factory=CustomerIn)
    assurance: Literal["identified", "authenticated"] | None = None
    attributes: dict[str, JsonValue] | None = None


class MessageIn(Strict):
    text: Text | None = None
    digits: Annotated[str, StringConstraints(pattern=r"^[0-9*#]{1,64}$")] | None = None
    leg_id: Id | None = None
    # The floor epoch an agent saw when writing; by default the current one (they must hold the floor).
    floor_epoch: int | None = None

    @model_validator(mode="after")
    def one_of_text_or_digits(self) -> MessageIn:
        if (self.text is None) == (self.digits is None):
            raise ValueError("send exactly one of text or digits")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is blank")
        return self


class HandoffTarget(Strict):
    kind: Literal["human", "ai", "queue", "agent"]
    id: Id | None = None


class HandoffIn(Strict):
    target: HandoffTarget
    reason: Text


class HandbackIn(Strict):
    flow: Short | None = None
    step: Short | None = None
    goal: Short | None = None
    instructions: Text | None = None


class DecisionIn(Strict):
    reason: Text | None = None


class ApprovalIn(DecisionIn):
    # The argument digest the approver saw: an approval never covers other arguments than those.
    args_digest: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class FactIn(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    value: JsonValue
    subject: Id | None = None


class WhisperIn(Strict):
    to: Literal["agent", "ai"]
    text: Text


class WrapupIn(Strict):
    disposition: Short
    notes: Text | None = None


class CloseIn(Strict):
    disposition: Short | None = None


class AgentIn(Strict):
    name: Short
    skills: Annotated[list[Short], Field(max_length=32)] = Field(default_factory=list)
    capacity: Annotated[int, Field(ge=1, le=50)] = 1
    role: Literal["agent", "supervisor"] = "agent"


class PresenceIn(Strict):
    status: Literal["available", "busy", "away"]


class ChannelIn(Strict):
    kinds: Annotated[list[Channel], Field(min_length=1)]


class TicketIn(Strict):
    """The stream a ticket opens: its path, or the interaction or agent it follows."""

    path: Annotated[str, StringConstraints(max_length=300)] | None = None
    interaction_id: Id | None = None
    agent_id: Id | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> TicketIn:
        if sum(x is not None for x in (self.path, self.interaction_id, self.agent_id)) != 1:
            raise ValueError("name exactly one of path, interaction_id or agent_id")
        return self


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(exclude_none=True)
