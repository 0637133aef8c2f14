"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Its schemas say what webapp.tickets.validate checks syntactically; the rest (branch of the
issuer, SAT catalogs, the total against the lines) is answered with 422 and per-field errors.
"""

from __future__ import annotations

import functools

from webapp.api.idempotency import HEADER, REPLAYED
from webapp.billing import catalog
from webapp.tickets.payment import TICKET_FORMAS_PAGO
from webapp.tickets.validate import MAX_DESCRIPTION, MAX_LINES

MAX_BATCH = 500
DECIMAL6 = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"
DIGITS = r"^[0-9]{1,40}$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict | None = None) -> dict:
    return _json(_ref("Errors"), description, headers)


LINE_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "description",
        "clave_prod_serv",
        "clave_unidad",
        "quantity",
        "unit_price",
        "objeto_imp",
    ],
    "properties": {
        "description": {"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION},
        "clave_prod_serv": {
            "type": "string",
            "pattern": "^[0-9]{8}$",
            "description": "SAT c_ClaveProdServ.",
            "examples": ["50202306"],
        },
        "clave_unidad": {
            "type": "string",
            "pattern": "^[A-Z0-9]{1,3}$",
            "description": "SAT c_ClaveUnidad.",
            "examples": ["H87"],
        },
        "quantity": {"type": "string", "pattern": DECIMAL6, "examples": ["2"]},
        "unit_price": {
            "type": "string",
            "pattern": DECIMAL6,
            "description": "Before tax.",
            "examples": ["15.52"],
        },
        "objeto_imp": {"type": "string", "enum": ["01", "02"], "description": "SAT c_ObjetoImp."},
        "tax_factor": {
            "type": ["string", "null"],
            "enum": ["Tasa", "Exento", None],
            "description": "Required with objeto_imp 02; null or absent with 01.",
        },
        "tax_rate": {
            "type": ["string", "null"],
            "enum": ["0.160000", "0.080000", "0.000000", None],
            "description": "Required with Tasa; null or absent with Exento or 01.",
        },
    },
}

TICKET_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["branch", "ticket_number", "order_number", "sold_at", "total", "lines"],
    "properties": {
        "branch": {
            "type": "string",
            "minLength": 1,
            "maxLength": 20,
            "description": "Code of one of the issuer's active branches.",
        },
        "ticket_number": {"type": "string", "pattern": DIGITS},
        "order_number": {"type": "string", "pattern": DIGITS},
        "sold_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with offset.",
            "examples": ["2026-05-01T13:45:00-06:00"],
        },
        "total": {
            "type": "string",
            "pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$",
            "description": "Must equal the sum over the lines of round(quantity × unit_price, 2) "
            "plus round(that × tax_rate, 2), half up: the CFDI's Total.",
        },
        "currency": {"type": "string", "enum": ["MXN"], "default": "MXN"},
        "forma_pago": {
            "type": ["string", "null"],
            "enum": [*TICKET_FORMAS_PAGO, None],
            "description": "SAT c_FormaPago of the payment; paid with several forms, the one "
            "with the greatest amount. 99 (por definir) is refused. Optional: a factura global "
            "counts a ticket without it as 01 (efectivo).",
            "examples": ["04"],
        },
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_LINES,
            "items": _ref("LineInput"),
        },
    },
}

BATCH_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tickets"],
    "properties": {
        "tickets": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH,
            "items": _ref("TicketInput"),
        }
    },
}

LINE = {
    "type": "object",
    "required": [
        "description",
        "clave_prod_serv",
        "clave_unidad",
        "quantity",
        "unit_price",
        "objeto_imp",
        "tax_factor",
        "tax_rate",
    ],
    "properties": {
        "description": {"type": "string"},
        "clave_prod_serv": {"type": "string"},
        "clave_unidad": {"type": "string"},
        "quantity": {"type": "string"},
        "unit_price": {"type": "string"},
        "objeto_imp": {"type": "string"},
        "tax_factor": {"type": ["string", "null"]},
        "tax_rate": {"type": ["string", "null"]},
    },
}

TICKET = {
    "type": "object",
    "required": [
        "branch",
        "ticket_number",
        "order_number",
        "sold_at",
        "total",
        "currency",
        "status",
        "created_at",
        "lines",
    ],
    "properties": {
        "branch": {"type": "string"},
        "ticket_number": {"type": "string"},
        "order_number": {"type": "string"},
        "sold_at": {"type": "string", "format": "date-time"},
        "total": {"type": "string"},
        "currency": {"type": "string"},
        "forma_pago": {
            "type": ["string", "null"],
            "description": "SAT c_FormaPago as pushed; null when the ticket came without it.",
        },
        "status": {
            "type": "string",
            "enum": ["open", "invoiced", "in_global", "cancelled"],
            "description": "open: may be invoiced; invoiced: has its own CFDI; in_global: in a "
            "factura global; cancelled.",
        },
        "created_at": {"type": "string", "format": "date-time"},
        "lines": {"type": "array", "items": _ref("Line")},
    },
}

ERROR = {
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {
            "type": "string",
            "description": "Path of the field in the request (e.g. "
            "tickets[3].lines[0].clave_prod_serv), a header name, body, or empty.",
        },
        "message": {
            "type": "string",
            "description": "In Spanish (es-MX), or in English when the request carries the "
            "portal's language cookie lang=en.",
        },
    },
}

ERRORS = {
    "type": "object",
    "required": ["errors"],
    "properties": {"errors": {"type": "array", "items": _ref("Error")}},
}

BATCH_RESULT = {
    "type": "object",
    "required": ["created", "existing", "rejected", "results"],
    "properties": {
        "created": {"type": "integer", "minimum": 0},
        "existing": {"type": "integer", "minimum": 0},
        "rejected": {"type": "integer", "minimum": 0},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "outcome"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "outcome": {
                        "type": "string",
                        "enum": ["created", "existing", "conflict", "rejected"],
                    },
                    "ticket": _ref("Ticket"),
                    "errors": {"type": "array", "items": _ref("Error")},
                },
            },
        },
        "errors": {"type": "array", "items": _ref("Error")},
    },
}

UNAUTHORIZED = _error(
    "No key, an unknown key or a revoked key.",
    {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
)
REPLAYED_HEADER = {
    REPLAYED: {
        "description": "true when this is the stored answer to an earlier request with the "
        "same Idempotency-Key and body.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

IDEMPOTENCY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Replays the first answer for the same key and body "
    "(per issuer); the same key with another body is a 422.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[!-~]+$",
    },
}


@functools.cache
def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Autofactura: tickets del punto de venta",
            "version": "1.0.0",
            "description": (
                "Push the point of sale's tickets so customers can invoice them. "
                "Authenticate with an API key made in the back office (/admin/api) as "
                "`Authorization: Bearer <key>`. A ticket is identified by its branch and ticket "
                "number: pushing it again with the same content answers 200 with the stored "
                "ticket; with other content, 409. Errors are JSON: "
                '`{"errors": [{"field": "lines[0].clave_prod_serv", "message": "..."}]}`. '
                "A service provider (an issuer of monthly service bills) pushes its service "
                "types, plans, service accounts with their lines, charges and payments the "
                "same way (/api/v1/service-types and the rest); a retail issuer's key gets 403 "
                "there."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/tickets": {
                "post": {
                    "operationId": "pushTickets",
                    "summary": "Push one ticket, or a batch of up to 500",
                    "description": (
                        "A single ticket object answers 201 (created), 200 (already there, same "
                        "content), 409 (already there, other content) or 422 (field errors). "
                        '`{"tickets": [...]}` answers with every item\'s outcome: 201 when any '
                        "was created, 200 when all were already there, 422 when none was "
                        "accepted; each ticket is stored whole or not at all."
                    ),
                    "parameters": [IDEMPOTENCY_PARAMETER],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [_ref("TicketInput"), _ref("BatchInput")],
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"oneOf": [_ref("Ticket"), _ref("BatchResult")]},
                            "The ticket (or every ticket of the batch) was already stored.",
                            REPLAYED_HEADER,
                        ),
                        "201": _json(
                            {"oneOf": [_ref("Ticket"), _ref("BatchResult")]},
                            "Created (for a batch: at least one ticket).",
                            {
                                **REPLAYED_HEADER,
                                "Location": {
                                    "description": "The ticket's URL (single ticket).",
                                    "schema": {"type": "string"},
                                },
                            },
                        ),
                        "400": _error("Malformed JSON, or a malformed Idempotency-Key."),
                        "401": UNAUTHORIZED,
                        "409": _error("The branch and ticket number exist with other content."),
                        "413": _error("The body is too large."),
                        "429": _error("Too many requests with this API key (RATELIMIT_API)."),
                        "422": _error(
                            "Field errors (for a batch, also the results of every item); or "
                            "an Idempotency-Key already used with another body."
                        ),
                    },
                }
            },
            "/api/v1/tickets/{branch}/{ticket_number}": {
                "get": {
                    "operationId": "getTicket",
                    "summary": "A ticket and its status",
                    "parameters": [
                        {
                            "name": "branch",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 20},
                        },
                        {
                            "name": "ticket_number",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 40},
                        },
                    ],
                    "responses": {
                        "200": _json(_ref("Ticket"), "The ticket."),
                        "401": UNAUTHORIZED,
                        "404": _error("No such ticket in that branch of the issuer."),
                        "429": _error("Too many requests with this API key (RATELIMIT_API)."),
                    },
                }
            },
            **services_paths(),
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key made in the back office (af_live_...).",
                }
            },
            "schemas": {
                "LineInput": LINE_INPUT,
                "TicketInput": TICKET_INPUT,
                "BatchInput": BATCH_INPUT,
                "Line": LINE,
                "Ticket": TICKET,
                "BatchResult": BATCH_RESULT,
                "Error": ERROR,
                "Errors": ERRORS,
                **services_schemas(),
            },
        },
    }


# --- A service provider's data (webapp.api.services, webapp.billing.catalog) -----------------


def _nullable(schema: dict) -> dict:
    """`schema` or null (an optional field: null is the same as leaving it out)."""
    kind = schema.get("type", "string")
    out = {**schema, "type": [kind, "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


_CODE = {"type": "string", "pattern": f"^{catalog.CODE_PATTERN}$", "examples": ["M-5GB"]}
_NUMBER = {"type": "string", "pattern": f"^{catalog.NUMBER_PATTERN}$", "examples": ["100001"]}
_EXTERNAL_ID = {
    "type": "string",
    "pattern": f"^{catalog.EXTERNAL_ID_PATTERN}$",
    "description": "The provider's own id: sending it again with the same content changes nothing.",
}
_STATUS = _nullable({"type": "string", "enum": ["active", "suspended", "closed"]})
_RATE = _nullable(
    {
        "type": "string",
        "pattern": f"^{catalog.RATE_PATTERN}$",
        "description": "IVA, by the issuer's country. Mexico (SAT): "
        f"{catalog.DEFAULT_RATE} (the default when absent), "
        + ", ".join(r for r in catalog.RATES if r != str(catalog.DEFAULT_RATE))
        + "; Ecuador (SRI): "
        f"{catalog.EC_DEFAULT_RATE} (the default when absent), "
        + ", ".join(r for r in catalog.EC_RATES if r != str(catalog.EC_DEFAULT_RATE))
        + ". null for exento. Another country's rate is answered 422.",
        "examples": ["0.160000", "0.150000"],
    }
)
_CLAVE_PROD = _nullable(
    {
        "type": "string",
        "pattern": "^[A-Za-z0-9]{1,8}$",
        "description": f"Mexico: SAT c_ClaveProdServ (8 digits, in SAT's catalog). Ecuador: "
        "any code of up to 8 letters or digits, only stored (an SRI factura does not carry "
        f"it). {catalog.DEFAULT_CLAVE_PROD} when absent.",
    }
)
_CLAVE_UNIDAD = _nullable(
    {
        "type": "string",
        "pattern": "^[A-Za-z0-9]{1,3}$",
        "description": "Mexico: SAT c_ClaveUnidad (in SAT's catalog). Ecuador: any code of up "
        f"to 3 letters or digits, only stored. {catalog.DEFAULT_CLAVE_UNIDAD} when absent.",
    }
)
_LINE_NUMBER = {
    "type": "string",
    "minLength": 1,
    "maxLength": 40,
    "description": "A phone number for a service type of line_kind phone (any common "
    "writing of a Mexican number or an Ecuadorian mobile; stored in E.164), a contract "
    "number otherwise (letters, digits, . _ / -).",
    "examples": ["+525580000001"],
}

SERVICE_INPUTS = {
    "ServiceTypeInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "name"],
        "properties": {
            "code": _CODE,
            "name": {"type": "string", "minLength": 1, "maxLength": catalog.TYPE_NAME_MAX},
            "line_kind": _nullable(
                {
                    "type": "string",
                    "enum": ["phone", "contract"],
                    "description": "phone (the default): lines are phone numbers; contract: "
                    "contract numbers. Fixed once the type has lines.",
                }
            ),
        },
    },
    "PlanInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "service_type", "name", "monthly_fee"],
        "properties": {
            "code": _CODE,
            "service_type": {**_CODE, "description": "Code of one of the issuer's types."},
            "name": {"type": "string", "minLength": 1, "maxLength": catalog.PLAN_NAME_MAX},
            "monthly_fee": {
                "type": "string",
                "pattern": DECIMAL6,
                "description": "Before tax.",
                "examples": ["172.41"],
            },
            "tax_rate": _RATE,
            "clave_prod_serv": _CLAVE_PROD,
            "clave_unidad": _CLAVE_UNIDAD,
            "active": _nullable({"type": "boolean", "description": "true when absent."}),
        },
    },
    "FiscalInput": {
        "type": "object",
        "additionalProperties": False,
        "required": list(catalog.EC_FISCAL_FIELDS),
        "description": "The data of the holder's own invoices, by the issuer's country. "
        "Mexico: all five (checked against SAT's catalogs); with them each bill is the "
        "holder's invoice, without them a receipt. Ecuador: the RUC (rfc) and the razón "
        "social (name) only, cp, regimen and uso absent or null (a value is answered 422); "
        "with them each bill is an SRI factura to the RUC, without them to the holder's "
        "cédula or passport.",
        "properties": {
            "rfc": {
                "type": "string",
                "minLength": 1,
                "maxLength": 13,
                "description": "Mexico: the RFC as SAT writes it. Ecuador: the RUC, 13 "
                "digits ending in 001.",
                "examples": ["FUNK671228PH6", "1792653185001"],
            },
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": catalog.NOMBRE_MAX,
                "description": "Mexico: the name as on the Constancia de Situación Fiscal. "
                "Ecuador: the razón social.",
            },
            "cp": _nullable(
                {"type": "string", "pattern": "^[0-9]{5}$", "description": "Mexico only."}
            ),
            "regimen": _nullable(
                {"type": "string", "pattern": "^[0-9]{3}$", "description": "Mexico only."}
            ),
            "uso": _nullable(
                {"type": "string", "pattern": "^[A-Z0-9]{3,4}$", "description": "Mexico only."}
            ),
        },
    },
    "AccountLineInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["number", "service_type"],
        "properties": {
            "number": _LINE_NUMBER,
            "service_type": _CODE,
            "plan": _nullable({**_CODE, "description": "A plan of that service type."}),
            "status": _STATUS,
        },
    },
    "ServiceAccountInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["number", "holder_name", "holder_id"],
        "properties": {
            "number": _NUMBER,
            "holder_name": {"type": "string", "minLength": 1, "maxLength": catalog.NOMBRE_MAX},
            "holder_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 20,
                "description": "Mexico: the holder's RFC as SAT writes it (XAXX010101000 "
                "when they gave none). Ecuador: the holder's cédula (10 digits, a valid check "
                "digit) or passport (3 to 20 capital letters, digits or -).",
                "examples": ["FUNK671228PH6", "1712345675"],
            },
            "fiscal": {"oneOf": [_ref("FiscalInput"), {"type": "null"}]},
            "email": _nullable({"type": "string", "minLength": 1, "maxLength": 254}),
            "contact_mobile": _nullable(
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": catalog.PHONE_INPUT_MAX,
                    "description": "Where codes for contract lines go.",
                }
            ),
            "billing_day": _nullable(
                {"type": "integer", "minimum": 1, "maximum": 28, "description": "1 if absent."}
            ),
            "status": _STATUS,
            "lines": _nullable(
                {
                    "type": "array",
                    "maxItems": catalog.MAX_NESTED_LINES,
                    "items": _ref("AccountLineInput"),
                    "description": "Lines to add or update; lines not listed stay as they are.",
                }
            ),
        },
    },
    "ServiceLineInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["number", "account", "service_type"],
        "properties": {
            "number": _LINE_NUMBER,
            "account": {
                **_NUMBER,
                "description": "The account the line belongs to; "
                "moving a line makes its holder prove it again.",
            },
            "service_type": _CODE,
            "plan": _nullable(_CODE),
            "status": _STATUS,
        },
    },
    "ChargeInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["external_id", "account", "period", "description", "unit_price"],
        "properties": {
            "external_id": _EXTERNAL_ID,
            "account": _NUMBER,
            "line": _nullable({"type": "string", "minLength": 1, "maxLength": 40}),
            "period": {"type": "string", "pattern": f"^{catalog.PERIOD_PATTERN}$"},
            "description": {"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION},
            "quantity": _nullable({"type": "string", "pattern": DECIMAL6}),
            "unit_price": {"type": "string", "pattern": DECIMAL6, "description": "Before tax."},
            "tax_rate": _RATE,
            "clave_prod_serv": _CLAVE_PROD,
            "clave_unidad": _CLAVE_UNIDAD,
        },
    },
    "PaymentInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["external_id", "account", "amount", "received_at"],
        "properties": {
            "external_id": _EXTERNAL_ID,
            "account": _NUMBER,
            "amount": {"type": "string", "pattern": f"^{catalog.AMOUNT_PATTERN}$"},
            "received_at": {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601 with offset.",
            },
            "forma_pago": _nullable(
                {
                    "type": "string",
                    "enum": sorted({*catalog.FORMAS_PAGO, *catalog.EC_FORMAS_PAGO}),
                    "description": "By the issuer's country. Mexico: SAT c_FormaPago ("
                    + ", ".join(catalog.FORMAS_PAGO)
                    + "; not 99). Ecuador: SRI forma de pago ("
                    + ", ".join(catalog.EC_FORMAS_PAGO)
                    + "). Another country's code is answered 422.",
                }
            ),
            "reference": _nullable({"type": "string", "maxLength": catalog.REFERENCE_MAX}),
        },
    },
}

_S = {"type": "string"}
_SN = {"type": ["string", "null"]}
SERVICE_OUTPUTS = {
    "ServiceType": {
        "type": "object",
        "required": ["code", "name", "line_kind"],
        "properties": {"code": _S, "name": _S, "line_kind": {"enum": ["phone", "contract"]}},
    },
    "Plan": {
        "type": "object",
        "required": ["code", "service_type", "name", "monthly_fee", "tax_rate", "active"],
        "properties": {
            "code": _S,
            "service_type": _S,
            "name": _S,
            "monthly_fee": _S,
            "tax_rate": _SN,
            "clave_prod_serv": _S,
            "clave_unidad": _S,
            "active": {"type": "boolean"},
        },
    },
    "ServiceLine": {
        "type": "object",
        "required": ["number", "service_type", "plan", "status"],
        "properties": {
            "number": _S,
            "account": _S,
            "service_type": _S,
            "plan": _SN,
            "status": {"enum": ["active", "suspended", "closed"]},
        },
    },
    "ServiceAccount": {
        "type": "object",
        "required": ["number", "holder_name", "holder_id", "fiscal", "billing_day", "lines"],
        "properties": {
            "number": _S,
            "holder_name": _S,
            "holder_id": _S,
            "fiscal": {
                "type": ["object", "null"],
                "description": "Ecuador: rfc is the RUC, name the razón social; cp, regimen "
                "and uso are null.",
                "properties": {
                    k: _S if k in catalog.EC_FISCAL_FIELDS else _SN for k in catalog.FISCAL_FIELDS
                },
            },
            "email": _SN,
            "contact_mobile": _SN,
            "billing_day": {"type": "integer"},
            "status": {"enum": ["active", "suspended", "closed"]},
            "lines": {"type": "array", "items": _ref("ServiceLine")},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "Charge": {
        "type": "object",
        "required": ["external_id", "account", "period", "unit_price", "billed"],
        "properties": {
            "external_id": _S,
            "account": _S,
            "line": _SN,
            "period": _S,
            "description": _S,
            "quantity": _S,
            "unit_price": _S,
            "tax_rate": _SN,
            "clave_prod_serv": _S,
            "clave_unidad": _S,
            "billed": {"type": "boolean", "description": "On a bill: it no longer changes."},
        },
    },
    "Payment": {
        "type": "object",
        "required": ["external_id", "account", "amount", "received_at"],
        "properties": {
            "external_id": _S,
            "account": _S,
            "amount": _S,
            "received_at": {"type": "string", "format": "date-time"},
            "forma_pago": _SN,
            "reference": _S,
        },
    },
}

# path, method, operationId, batch key, input schema, output schema, summary, can conflict
SERVICE_OPERATIONS = (
    (
        "service-types",
        "put",
        "putServiceTypes",
        "service_types",
        "ServiceType",
        False,
        "Add or update service types (by code)",
    ),
    ("plans", "put", "putPlans", "plans", "Plan", False, "Add or update plans (by code)"),
    (
        "service-accounts",
        "put",
        "putServiceAccounts",
        "service_accounts",
        "ServiceAccount",
        False,
        "Add or update service accounts (by number), with lines",
    ),
    (
        "lines",
        "put",
        "putLines",
        "lines",
        "ServiceLine",
        False,
        "Add, update or move lines (by number)",
    ),
    (
        "charges",
        "post",
        "postCharges",
        "charges",
        "Charge",
        True,
        "Push charges of a billing period (by external_id)",
    ),
    (
        "payments",
        "post",
        "postPayments",
        "payments",
        "Payment",
        True,
        "Push payments received (by external_id)",
    ),
)
_INPUT_OF = {
    "ServiceType": "ServiceTypeInput",
    "Plan": "PlanInput",
    "ServiceAccount": "ServiceAccountInput",
    "ServiceLine": "ServiceLineInput",
    "Charge": "ChargeInput",
    "Payment": "PaymentInput",
}


def _batch_input(key: str, item: str) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [key],
        "properties": {
            key: {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": _ref(item)}
        },
    }


def _batch_result(item: str) -> dict:
    return {
        "type": "object",
        "required": ["created", "updated", "unchanged", "rejected", "results"],
        "properties": {
            "created": {"type": "integer", "minimum": 0},
            "updated": {"type": "integer", "minimum": 0},
            "unchanged": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "outcome"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "outcome": {
                            "enum": ["created", "updated", "unchanged", "conflict", "rejected"]
                        },
                        "item": _ref(item),
                        "errors": {"type": "array", "items": _ref("Error")},
                    },
                },
            },
            "errors": {"type": "array", "items": _ref("Error")},
        },
    }


def services_schemas() -> dict:
    schemas = {**SERVICE_INPUTS, **SERVICE_OUTPUTS}
    for _path, _method, _op, key, item, _conflict, _summary in SERVICE_OPERATIONS:
        schemas[f"{item}Batch"] = _batch_input(key, _INPUT_OF[item])
        schemas[f"{item}BatchResult"] = _batch_result(item)
    return schemas


FORBIDDEN = _error("The API key is a retail issuer's: these operations are a service provider's.")


def services_paths() -> dict:
    paths: dict = {}
    for path, method, operation_id, key, item, conflict, summary in SERVICE_OPERATIONS:
        answer = {"oneOf": [_ref(item), _ref(f"{item}BatchResult")]}
        responses = {
            "200": _json(
                answer,
                "Stored already (unchanged) or updated; for a batch, none created and at least "
                "one accepted.",
                REPLAYED_HEADER,
            ),
            "201": _json(
                answer,
                "Created (for a batch: at least one item).",
                {
                    **REPLAYED_HEADER,
                    "Location": {
                        "description": "The account's URL (a single service account).",
                        "schema": {"type": "string"},
                    },
                },
            ),
            "400": _error("Malformed JSON, or a malformed Idempotency-Key."),
            "401": UNAUTHORIZED,
            "403": FORBIDDEN,
            "413": _error("The body is too large."),
            "422": _error(
                "Field errors (for a batch: every item rejected, with each one's result); or "
                "an Idempotency-Key already used with another body."
            ),
            "429": _error("Too many requests with this API key (RATELIMIT_API)."),
        }
        if conflict:
            responses["409"] = _error(
                "The external_id exists with other content and cannot change (a billed "
                "charge, a payment)."
            )
        paths[f"/api/v1/{path}"] = {
            method: {
                "operationId": operation_id,
                "summary": summary,
                "description": (
                    f'One object, or `{{"{key}": [...]}}` (up to {MAX_BATCH}); each item is '
                    "stored whole or not at all, upserted by its natural key. The same content "
                    "again changes nothing. Fiscal values follow the issuer's country: Mexico's "
                    "SAT (RFC, IVA 16 %, c_FormaPago) or Ecuador's SRI (RUC, cédula, IVA 15 %, "
                    "SRI formas de pago)."
                ),
                "parameters": [IDEMPOTENCY_PARAMETER],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [_ref(_INPUT_OF[item]), _ref(f"{item}Batch")]}
                        }
                    },
                },
                "responses": responses,
            }
        }
    paths["/api/v1/service-accounts/{number}"] = {
        "get": {
            "operationId": "getServiceAccount",
            "summary": "A service account with its lines",
            "parameters": [
                {
                    "name": "number",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 40},
                }
            ],
            "responses": {
                "200": _json(_ref("ServiceAccount"), "The account."),
                "401": UNAUTHORIZED,
                "403": FORBIDDEN,
                "404": _error("No such account of the issuer."),
                "429": _error("Too many requests with this API key (RATELIMIT_API)."),
            },
        }
    }
    return paths
