"""What the simulated Brincr API serves: sample data and the scope each resource needs."""

from __future__ import annotations

from typing import Any

RESOURCE_SCOPES: dict[str, str] = {
    "categories": "brincr:category",
    "countries": "brincr:country",
    "customers": "brincr:customer",
    "orders": "brincr:order",
    "products": "brincr:product",
    "statuses": "brincr:status",
}

SAMPLE_DATA: dict[str, list[dict[str, Any]]] = {
    "categories": [
        {"id": 1, "name": "Ruwbouw"},
        {"id": 2, "name": "Afbouw"},
        {"id": 3, "name": "Installatietechniek"},
        {"id": 4, "name": "Grondwerk"},
    ],
    "countries": [
        {"id": 1, "name": "Nederland", "code": "NL"},
        {"id": 2, "name": "België", "code": "BE"},
        {"id": 3, "name": "Duitsland", "code": "DE"},
    ],
    "customers": [
        {"id": 1, "name": "Bouwbedrijf De Vries B.V.", "city": "Utrecht"},
        {"id": 2, "name": "Aannemersbedrijf Jansen", "city": "Zwolle"},
    ],
    "orders": [
        {"id": 1001, "number": "ORD-2024-1001", "customer_id": 1, "status_id": 1},
        {"id": 1002, "number": "ORD-2024-1002", "customer_id": 2, "status_id": 2},
    ],
    "products": [
        {"id": 1, "name": "Kalkzandsteen 300 mm", "unit": "m2"},
        {"id": 2, "name": "Gipsplaat 12,5 mm", "unit": "stuk"},
        {"id": 3, "name": "Beton C30/37", "unit": "m3"},
    ],
    "statuses": [
        {"id": 1, "name": "Offerte"},
        {"id": 2, "name": "In uitvoering"},
        {"id": 3, "name": "Opgeleverd"},
    ],
}

# Laravel's wording, which Brincr's API uses ({"message": "Unauthenticated."} on 401).
STATUS_MESSAGES: dict[int, str] = {
    401: "Unauthenticated.",
    403: "Invalid scope(s) provided.",
    404: "Not Found.",
    405: "Method Not Allowed.",
    422: "The given data was invalid.",
    429: "Too Many Attempts.",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

# The token endpoint's error code for a simulated bare status (fault mode "status").
STATUS_TOKEN_ERRORS: dict[int, str] = {
    400: "invalid_request",
    401: "invalid_client",
    403: "unauthorized_client",
    429: "temporarily_unavailable",
    503: "temporarily_unavailable",
}


def resource_of(path: str) -> str:
    """``categories`` for ``categories``, ``categories/5`` or ``/categories?x=1``."""
    return path.strip("/").split("/", 1)[0]


def token_error_for_status(status: int) -> str:
    return STATUS_TOKEN_ERRORS.get(status, "server_error" if status >= 500 else "invalid_request")


def api_message_for_status(status: int) -> str:
    return STATUS_MESSAGES.get(status, f"HTTP {status}")
