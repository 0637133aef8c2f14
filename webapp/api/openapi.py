"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Its schemas say what webapp.tickets.validate checks syntactically; the rest (branch of the
issuer, SAT catalogs, the total against the lines) is answered with 422 and per-field errors.
"""

from __future__ import annotations

import functools

from webapp.api.idempotency import HEADER, REPLAYED
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
                '`{"errors": [{"field": "lines[0].clave_prod_serv", "message": "..."}]}`.'
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
                    "parameters": [
                        {
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
                    ],
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
            },
        },
    }
