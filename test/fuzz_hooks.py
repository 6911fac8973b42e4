"""schemathesis hooks for test/fuzz.test.ts (loaded through SCHEMATHESIS_HOOKS).

The one rule of the API a description cannot state: an Idempotency-Key names one request. The
fuzzer draws keys like "0" for many different requests, which billflow rightly refuses
(422 idempotency-key-reused); an ERP makes a fresh key per request, so each fuzzed request gets one.
Keys that break the description (longer than 255) are left as drawn, so their refusal is tested.
"""

import uuid

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and len(headers[name]) <= 255:
            headers[name] = str(uuid.uuid4())
