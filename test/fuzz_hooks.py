"""schemathesis hooks for test/fuzz.test.ts (loaded through SCHEMATHESIS_HOOKS).

The one rule of the API a description cannot state: an Idempotency-Key names one request. The
fuzzer draws keys like "0" for many different requests, which billflow rightly refuses
(422 idempotency-key-reused); an ERP makes a fresh key per request, so each fuzzed request gets one.
Keys that break the description (longer than 255) are left as drawn, so their refusal is tested.

In the stateful phase, whose chains of links should reach real invoices and what can be done with
them, requests of the positive mode act for the key's company and create new things (see before_call).
With FUZZ_STATEFUL_LOG set, every answer of the stateful phase is written there as a line
"<operation> <status>", so the test can say which operations the chains of links reached.
"""

import math
import os
import uuid

import schemathesis
from schemathesis.specs.openapi.stateful.dependencies import naming


# What the stateful phase's chains act on: the key's company, and the clients and projects that
# exist (the test's own, FUZZ_CLIENT and FUZZ_PROJECT, and those the chains create; project -> client).
COMPANY = os.environ.get("FUZZ_COMPANY")
CLIENTS = {c for c in [os.environ.get("FUZZ_CLIENT")] if c}
PROJECTS = {os.environ["FUZZ_PROJECT"]: os.environ["FUZZ_CLIENT"]} if os.environ.get("FUZZ_PROJECT") else {}
# The bound of money fields (api/openapi-parts.ts MAX_MINOR).
MAX_MINOR = 10_000_000_000_000


def _fresh(value):
    """A new identifier from a drawn one (same pattern, at most 64 characters)."""
    return f"{value[:55]}-{uuid.uuid4().hex[:8]}"


def _js_round(x):
    # JavaScript's Math.round, which the API checks a line with (halves go up).
    return math.floor(x + 0.5)


def _valid_invoice(body):
    """The rules of an invoice that JSON Schema cannot state (test/schemathesis.toml), made to hold."""
    for line in body.get("lines") or []:
        if not isinstance(line, dict) or "quantity" not in line or "unitPrice" not in line:
            continue
        amount = _js_round(line["quantity"] * line["unitPrice"])
        if abs(amount) <= MAX_MINOR:
            line["amount"] = amount
        else:
            del line["quantity"], line["unitPrice"]
    if isinstance(body.get("invoiceDate"), str) and isinstance(body.get("dueDate"), str) and body["dueDate"] < body["invoiceDate"]:
        body["invoiceDate"], body["dueDate"] = body["dueDate"], body["invoiceDate"]
    if body.get("projectId") in PROJECTS:
        body["clientId"] = PROJECTS[body["projectId"]]
    else:
        body.pop("projectId", None)
        if body.get("clientId") not in CLIENTS and CLIENTS:
            body["clientId"] = sorted(CLIENTS)[0]


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and len(headers[name]) <= 255:
            headers[name] = str(uuid.uuid4())
    if not (case.meta is not None and case.meta.phase.name == "stateful" and case.meta.generation.mode.is_positive):
        return
    # A chain acts for the key's company, as an ERP does: a Billflow-Company drawn at random names a
    # company the key does not cover (404), which ends the chain at its first step. The other phases
    # fuzz the header.
    for name in list(headers):
        if name.lower() == "billflow-company" and COMPANY:
            headers[name] = COMPANY
    # Each create of a chain makes a new thing, so that what follows acts on it: drawn ids repeat
    # (409, tested by the other phases), and a drawn invoice mostly breaks a cross-field rule (422).
    body = case.body
    label = case.operation.label
    if label in ("POST /v1/clients", "POST /v1/projects", "POST /v1/invoices") and isinstance(body, dict):
        key = "number" if label == "POST /v1/invoices" else "id"
        if isinstance(body.get(key), str):
            body[key] = _fresh(body[key])
        if label == "POST /v1/invoices":
            _valid_invoice(body)
        if label == "POST /v1/projects":
            # A project of one of the company's clients, in the company itself.
            if body.get("clientId") not in CLIENTS and CLIENTS:
                body["clientId"] = sorted(CLIENTS)[0]
            if "companyId" in body and COMPANY:
                body["companyId"] = COMPANY


@schemathesis.hook
def after_call(context, case, response):
    created = response.json() if response.status_code == 201 and case.operation.label in ("POST /v1/clients", "POST /v1/projects") else {}
    if case.operation.label == "POST /v1/clients" and isinstance(created.get("id"), str):
        CLIENTS.add(created["id"])
    if case.operation.label == "POST /v1/projects" and isinstance(created.get("id"), str):
        PROJECTS[created["id"]] = created.get("clientId")
    log = os.environ.get("FUZZ_STATEFUL_LOG")
    phase = case.meta.phase.name if case.meta is not None else None
    if log and phase == "stateful":
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{case.operation.label} {response.status_code}\n")


# schemathesis's dependency analysis reads any parameter named like "<Thing>-Id" as a reference to
# a <Thing> resource. X-Request-Id is a correlation id, not a reference: read as one (to a resource
# nothing makes), it rules out every operation that takes it as a start of a stateful chain, and so
# POST /v1/clients and POST /v1/invoices, where chains to real invoices begin.
_from_parameter = naming.from_parameter


def _not_correlation_id(parameter, path, *, body_field=False):
    if parameter.strip().lower() == "x-request-id":
        return None
    return _from_parameter(parameter, path, body_field=body_field)


naming.from_parameter = _not_correlation_id
