"""The arguments each command takes, checked on the node before it runs.

Unknown keys are refused (a typo must not silently change what a command
does); a refusal names the field. The server checks only the names of the
keys (fleet_server.jobs.ARG_KEYS), so the two lists must agree.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from rpfleet.durations import Duration

MAX_LOG_LINES = 2000
MAX_LOG_RANGE_S = 24 * 3600
"""fetch-logs reads at most one day of the journal per command."""


class NoArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IdentifyArgs(NoArgs):
    counter: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="The counter to say; default: the counter of this node's peripherals.",
    )


class ScreenshotArgs(NoArgs):
    peripheral: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="Which screen; default: the first that can take a screenshot.",
    )
    max_width: int = Field(
        default=640, ge=64, le=1280, description="Downscaled to at most this width."
    )


class FetchLogsArgs(NoArgs):
    since: AwareDatetime | Duration | None = Field(
        default=None,
        description="From this time (ISO 8601 with offset) or this long ago (`30m`, `2h`); "
        "default one hour before `until`.",
    )
    until: AwareDatetime | None = Field(default=None, description="Up to this time; default now.")
    lines: int = Field(
        default=200, ge=1, le=MAX_LOG_LINES, description="The newest lines, at most."
    )
    unit: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9@._-]{1,100}$")] = Field(
        default="rpfleet-agent", description="The systemd unit whose journal is read.",
    )


class UpdateResetArgs(NoArgs):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = Field(
        default=None, description="Why, for the update's history; default: reset by the issuer.",
    )


ARGS: dict[str, type[NoArgs]] = {
    "restart-agent": NoArgs,
    "reboot": NoArgs,
    "identify": IdentifyArgs,
    "test-sound": NoArgs,
    "self-test": NoArgs,
    "screenshot": ScreenshotArgs,
    "fetch-logs": FetchLogsArgs,
    "update-reset": UpdateResetArgs,
}


class BadArgs(ValueError):
    """The command's args are not what it takes; the message names each bad field."""


def parse_args(name: str, args: dict[str, Any]) -> NoArgs:
    """``args`` checked against command ``name``'s model; raises BadArgs naming the fields."""
    try:
        return ARGS[name].model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"args.{'.'.join(str(p) for p in error['loc']) or '?'}: {error['msg']}"
            for error in exc.errors()
        )
        raise BadArgs(problems) from None
