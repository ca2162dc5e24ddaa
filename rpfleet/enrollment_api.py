"""The enrollment endpoint's contract (HTTPS), shared by the node and the server.

    GET  /v1/enroll/ca   the fleet CA (PEM); fetched before the node trusts
                         anything, and checked against the code's pin
    POST /v1/enroll      EnrollRequest  -> Enrollment     (one-time code + CSR)
    POST /v1/renew       RenewRequest   -> Renewal        (current cert + new CSR)

A refusal is a 4xx with a `Refusal` body: a stable reason code and a message
for the technician.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CA_PATH = "/v1/enroll/ca"
ENROLL_PATH = "/v1/enroll"
RENEW_PATH = "/v1/renew"
MAX_PEM = 8192


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EnrollRequest(_Model):
    code: str = Field(max_length=64, description="The one-time code, as the technician typed it.")
    csr: str = Field(max_length=MAX_PEM, description="PEM CSR made with the node's own key.")
    site: str | None = Field(
        default=None, max_length=64,
        description="Where the technician says they are; a code made for another site is refused.",
    )
    hostname: str | None = Field(default=None, max_length=255, description="For the record.")


class BrokerAddress(_Model):
    host: str
    port: int


class Enrollment(_Model):
    node_id: str
    site_id: str
    counter: str
    kind: str
    certificate: str = Field(description="PEM: the node's certificate, CN = node id.")
    ca: str = Field(description="PEM: the fleet CA.")
    broker: BrokerAddress
    peripherals: list[dict[str, Any]] = Field(description="The node's initial peripherals.")


class RenewRequest(_Model):
    certificate: str = Field(max_length=MAX_PEM, description="PEM: the node's current certificate.")
    csr: str = Field(max_length=MAX_PEM, description="PEM CSR for the new key.")
    signature: str = Field(
        max_length=512, description="Base64 ECDSA-SHA256 signature of `csr` by the current key."
    )


class Renewal(_Model):
    certificate: str


class Refusal(_Model):
    reason: str
    detail: str
