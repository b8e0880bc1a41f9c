"""Strict ids and bounded free-form JSON, over every route of the live OpenAPI.

An id in a path or query is canonical decimal digits (`^[1-9][0-9]*$`, leading zeros refused)
within its column's range; an id in a JSON body is a JSON integer. A free-form JSON field is at
most `MAX_JSON_DEPTH` deep and `MAX_JSON_BYTES` long. Each refusal is a 422 naming the parameter
or field and changes nothing in the database; a body too deep for Python's JSON decoder is a
400. The routes, their parameters and their fields are read from the OpenAPI document, so a new
route or field is covered (or fails here) without editing this file; valid bodies come from the
role table (tests/api/test_access.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from psycopg import sql
from pydantic import TypeAdapter, ValidationError

from api import create_app
from api.deps import MAX_JSON_BYTES, MAX_JSON_DEPTH, BodyId32, BoundedJson, Id32, Id64
from hazmon.settings import Settings
from tests.api.test_access import CASES, Case
from tests.support.tokens import bearer
from tests.support.world import World

Spec = dict[str, Any]
Schema = dict[str, Any]

# Spellings of id `n` that lax int parsing reads as `n` (or as another real id): each must be 422.
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def loose_spellings(n: int, maximum: int) -> list[str]:
    """Ways to write id `n` that are not its canonical digits, plus out-of-range ids."""
    digits = str(n)
    return [
        f"{n}.0",
        f"+{n}",
        f" {n}",
        f"{n} ",
        f"{n}\n",
        f"0{n}",
        f"00{n}",
        hex(n),
        f"{n}e0",
        f"{n}.",
        f"{digits[0]}_{digits[1:]}" if n >= 10 else f"0_{n}",
        str(n).translate(ARABIC_INDIC),
        str(n).translate(FULLWIDTH),
        "1_0",
        "1e1",
        "0",
        "-1",
        "-0",
        str(maximum + 1),
        "9" * 5000,
    ]


def _shape(path: str) -> str:
    return "/".join(
        "{}" if part.startswith("{") or part.isdigit() else part for part in path.split("/")
    )


def _schema(spec: Spec, schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branches(spec: Spec, schema: Schema) -> list[Schema]:
    """The schema, or each branch of an `anyOf` (nullable fields), resolved."""
    schema = _schema(spec, schema)
    return [_schema(spec, s) for s in schema.get("anyOf", [schema])]


def _is_integer(spec: Spec, schema: Schema) -> bool:
    return any(s.get("type") == "integer" for s in _branches(spec, schema))


def _is_free_form(spec: Spec, schema: Schema) -> bool:
    return any(
        s.get("type") == "object" and "properties" not in s and s.get("additionalProperties", True)
        for s in _branches(spec, schema)
    )


def _operations(spec: Spec) -> Iterator[tuple[str, str, Schema]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _body_schema(spec: Spec, operation: Schema) -> Schema | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return _schema(spec, content["application/json"]["schema"])


class Calls:
    """Calls of a route with the role table's valid ids and body, as the admin."""

    def __init__(self, world: World) -> None:
        self.names = {
            "a": SimpleNamespace(**world.ids["A"]),
            "b": SimpleNamespace(**world.ids["B"]),
            "x": SimpleNamespace(**world.extra),
        }
        self.cases: dict[tuple[str, str], Case] = {}
        for case in CASES:  # tenant A's row first in the table
            self.cases.setdefault((case.method, _shape(case.path)), case)

    def case(self, method: str, template: str) -> Case:
        found = self.cases.get((method, _shape(template)))
        assert found is not None, f"{method} {template} has no row in test_access.CASES"
        return found

    def path(self, method: str, template: str) -> str:
        """The route's path with the role table's (valid, in-scope) ids."""
        return self.case(method, template).path.format(**self.names)

    def body(self, method: str, template: str) -> dict[str, Any] | None:
        case = self.case(method, template)
        body = case.body(self.names["a"], self.names["b"]) if case.body else None
        assert not isinstance(body, bytes), f"{method} {template} takes a file, not JSON"
        return body

    def send(self, method: str, template: str) -> dict[str, Any]:
        """The keyword arguments of httpx that send the route's valid body (JSON or a file)."""
        case = self.case(method, template)
        body = case.body(self.names["a"], self.names["b"]) if case.body else None
        if isinstance(body, bytes):
            return {"content": body, "headers": {"content-type": "image/jpeg"}}
        return {"json": body}


def _snapshot(db_url: str) -> dict[str, list[str]]:
    """Every row of every table (but the callers' `last_used_at`, which authenticating touches)."""
    with psycopg.connect(db_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        return {
            table: [
                row[0]
                for row in conn.execute(
                    sql.SQL(
                        "SELECT (to_jsonb(t) - 'last_used_at')::text FROM {} t ORDER BY 1"
                    ).format(sql.Identifier(table))
                )
            ]
            for table in tables
        }


def _refused(response: httpx.Response, *loc: str) -> str | None:
    """Why `response` is not a 422 whose only error is at `loc`, or None if it is."""
    if response.status_code != 422:
        return f"{response.status_code}: {response.text[:200]}"
    assert response.headers["content-type"] == "application/problem+json"
    locs = [e["loc"] for e in response.json().get("errors", [])]
    return None if locs == [list(loc)] else f"422 at {locs}, not only at {list(loc)}"


@pytest.fixture
def spec(world: World) -> Spec:
    return httpx.get(f"{world.base}/openapi.json").json()


@pytest.fixture
def admin(world: World) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=world.base, headers=bearer(world.tokens["admin"] or ""), timeout=30
    ) as http:
        yield http


def test_path_ids_are_canonical_digits_and_refusals_change_nothing(
    world: World, spec: Spec, admin: httpx.Client
) -> None:
    calls = Calls(world)
    before = _snapshot(world.db_url)
    tried, wrong = 0, []
    for method, template, operation in _operations(spec):
        params = [
            p
            for p in operation.get("parameters", [])
            if p["in"] == "path" and _is_integer(spec, p["schema"])
        ]
        if not params:
            continue
        (param,) = params
        real = calls.path(method, template)
        at = template.split("/").index("{" + param["name"] + "}")
        parts = real.split("/")
        n = int(parts[at])  # a real row: a loose spelling read as `n` would act on it
        for spelling in loose_spellings(n, param["schema"]["maximum"]):
            path = "/".join([*parts[:at], quote(spelling, safe=""), *parts[at + 1 :]])
            response = admin.request(method, path, **calls.send(method, template))
            tried += 1
            if why := _refused(response, "path", param["name"]):
                wrong.append(f"{method} {template} with {spelling[:12]!r}: {why}")
    assert tried > 400
    assert not wrong, "\n".join(wrong)
    assert _snapshot(world.db_url) == before

    # the outside check's case, and its canonical spelling still works
    spare = world.extra["spare_token"]
    assert admin.delete(f"/tokens/{spare}.0").status_code == 422
    with psycopg.connect(world.db_url) as conn:
        revoked = conn.execute("SELECT revoked_at FROM api_tokens WHERE id = %s", (spare,))
        assert revoked.fetchone() == (None,)
    assert admin.delete(f"/tokens/{spare}").status_code == 204


def test_query_ids_are_canonical_digits(world: World, spec: Spec, admin: httpx.Client) -> None:
    calls = Calls(world)
    site = world.ids["A"]["site"]
    tried, wrong = 0, []
    for method, template, operation in _operations(spec):
        for param in operation.get("parameters", []):
            if param["in"] != "query" or not _is_integer(spec, param["schema"]):
                continue
            if not param["name"].endswith("_id"):
                continue
            (maximum,) = [s["maximum"] for s in _branches(spec, param["schema"]) if "maximum" in s]
            for spelling in loose_spellings(site, maximum):
                response = admin.request(
                    method, calls.path(method, template), params={param["name"]: spelling}
                )
                tried += 1
                if why := _refused(response, "query", param["name"]):
                    wrong.append(f"{template}?{param['name']}={spelling[:12]!r}: {why}")
            canonical = admin.request(
                method, calls.path(method, template), params={param["name"]: str(site)}
            )
            assert canonical.status_code == 200, canonical.text
    assert tried > 100
    assert not wrong, "\n".join(wrong)


def test_body_ids_are_json_integers(world: World, spec: Spec, admin: httpx.Client) -> None:
    calls = Calls(world)
    before = _snapshot(world.db_url)
    fields, wrong = set(), []
    for method, template, operation in _operations(spec):
        schema = _body_schema(spec, operation)
        if schema is None:
            continue
        for name, prop in schema.get("properties", {}).items():
            if not (name.endswith("_id") and _is_integer(spec, prop)):
                continue
            fields.add(f"{schema['title']}.{name}")
            for loose in (True, 1.0, "1", " 1", 1.5):
                body = {**(calls.body(method, template) or {}), name: loose}
                response = admin.request(method, calls.path(method, template), json=body)
                if why := _refused(response, "body", name):
                    wrong.append(f"{method} {template} {name}={loose!r}: {why}")
    assert fields >= {
        "DeviceCreate.work_id",
        "HazardCreate.site_id",
        "HazardCreate.work_id",
        "HazardCreate.alert_id",
        "ThresholdCreate.work_id",
        "ThresholdCreate.series_id",
        "TokenCreate.site_id",
        "WorkCreate.site_id",
    }
    assert not wrong, "\n".join(wrong)
    assert _snapshot(world.db_url) == before


def nested(depth: int, leaf: object = 1) -> dict[str, Any]:
    """An object `depth` levels deep (the outer object is level 1), built without recursion."""
    value: dict[str, Any] = {"leaf": leaf}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_free_form_json_is_bounded_in_depth_and_size(
    world: World, spec: Spec, admin: httpx.Client
) -> None:
    calls = Calls(world)
    before = _snapshot(world.db_url)
    too_much: list[tuple[str, object, str]] = [
        ("one level too deep", nested(MAX_JSON_DEPTH + 1), "levels deep"),
        ("a list one level too deep", {"a": [[[[[[[[1]]]]]]]]}, "levels deep"),
        ("255 deep (was a 500)", nested(255), "levels deep"),
        ("params.source 300 deep", {"levels": {"red": 0.95}, "source": nested(300)}, "deep"),
        ("600 deep: Python's decoder still reads it", nested(600), "levels deep"),
        ("one long text", {"source": "塔" * (MAX_JSON_BYTES // 3)}, "bytes"),
        ("many keys", {f"k{i}": i for i in range(MAX_JSON_BYTES // 8)}, "bytes"),
        ("NaN, read by Python's decoder", {"levels": {"red": float("nan")}}, "finite"),
        ("Infinity", {"hysteresis": float("inf")}, "finite"),
        ("a lone surrogate", {"rated_curve": "\ud800", "source": "\udfff"}, "surrogates"),
    ]
    fields, wrong = set(), []
    for method, template, operation in _operations(spec):
        schema = _body_schema(spec, operation)
        if schema is None:
            continue
        for name, prop in schema.get("properties", {}).items():
            if not _is_free_form(spec, prop):
                continue
            fields.add(f"{schema['title']}.{name}")
            for what, value, message in too_much:
                body = {**(calls.body(method, template) or {}), name: value}
                response = admin.request(
                    method,
                    calls.path(method, template),
                    content=json.dumps(body),  # allow_nan: Python writes NaN as JSON does not
                    headers={"content-type": "application/json"},
                )
                why = _refused(response, "body", name)
                if why is None and message not in response.json()["errors"][0]["msg"]:
                    why = f"says {response.json()['errors'][0]['msg']!r}"
                if why:
                    wrong.append(f"{method} {template} {name} {what}: {why}")
    assert fields >= {
        "WorkCreate.params",
        "WorkUpdate.params",
        "ThresholdCreate.params",
        "ThresholdUpdate.params",
    }
    assert not wrong, "\n".join(wrong)
    assert _snapshot(world.db_url) == before


def test_a_deep_value_in_any_body_field_is_422(
    world: World, spec: Spec, admin: httpx.Client
) -> None:
    """Deep but decodable: every field (and an unknown one) refuses it by name, none fails."""
    calls = Calls(world)
    before = _snapshot(world.db_url)
    deep = nested(600)
    wrong = []
    for method, template, operation in _operations(spec):
        schema = _body_schema(spec, operation)
        if schema is None:
            continue
        for name in [*schema.get("properties", {}), "unknown_field"]:
            body = {**(calls.body(method, template) or {}), name: deep}
            response = admin.request(method, calls.path(method, template), json=body)
            if response.status_code != 422:
                wrong.append(f"{method} {template} {name}: {response.status_code}")
            elif ["body", name] not in [e["loc"][:2] for e in response.json()["errors"]]:
                wrong.append(f"{method} {template} {name}: {response.json()['errors']}")
    assert not wrong, "\n".join(wrong)
    assert _snapshot(world.db_url) == before


def test_a_body_too_deep_to_decode_is_400(world: World, spec: Spec, admin: httpx.Client) -> None:
    calls = Calls(world)
    depth = 100_000
    bodies = {
        "array": b"[" * depth + b"]" * depth,
        "in a field": b'{"params": ' + b'{"a": ' * depth + b"1" + b"}" * (depth + 1),
    }
    wrong = []
    for method, template, operation in _operations(spec):
        if _body_schema(spec, operation) is None:
            continue
        for what, content in bodies.items():
            response = admin.request(
                method,
                calls.path(method, template),
                content=content,
                headers={"content-type": "application/json"},
            )
            if response.status_code != 400:
                wrong.append(f"{method} {template} {what}: {response.status_code}")
                continue
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["detail"] == "the JSON body is nested too deeply to read"
    assert not wrong, "\n".join(wrong)
    assert admin.get("/healthz").status_code == 200


# --- the OpenAPI document, without a server --------------------------------------------------

_UNBOUNDED_QUANTIFIER = re.compile(r"(?<!\\)[*+]|\{\d+,\}")


def _bounded_string(schema: Schema) -> bool:
    if "maxLength" in schema or "enum" in schema or "const" in schema:
        return True
    if schema.get("format") == "date-time":  # parsed by a fixed grammar, not stored as text
        return True
    pattern = schema.get("pattern", "")
    return (
        pattern.startswith("^")
        and pattern.endswith("$")
        and not _UNBOUNDED_QUANTIFIER.search(pattern)
    )


def _strings(
    spec: Spec, schema: Schema, where: str, seen: set[str]
) -> Iterator[tuple[str, Schema]]:
    """Every string schema reachable from `schema`, with where it is."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        yield from _strings(spec, _schema(spec, schema), where, seen | {name})
        return
    if schema.get("type") == "string":
        yield where, schema
    for i, branch in enumerate(schema.get("anyOf", [])):
        yield from _strings(spec, branch, f"{where}|{i}", seen)
    for name, prop in schema.get("properties", {}).items():
        yield from _strings(spec, prop, f"{where}.{name}", seen)
    if "items" in schema:
        yield from _strings(spec, schema["items"], f"{where}[]", seen)


_ID_SCHEMAS = [
    {"type": "integer", "minimum": 1.0, "maximum": float(maximum)}
    for maximum in (2**31 - 1, 2**63 - 1)
]


def _id_shape(spec: Spec, schema: Schema) -> list[Schema]:
    """An id's schema as a list of its branches, without titles and descriptions.

    Bounds compare as floats: FastAPI's OpenAPI model types them `float`, and writes the range
    of a nullable body id as 1.0 to 9.223372036854776e18.
    """
    return [
        {
            k: float(v) if k in ("minimum", "maximum") else v
            for k, v in branch.items()
            if k not in ("title", "description")
        }
        for branch in _branches(spec, schema)
    ]


def test_every_string_input_is_bounded_and_ids_stay_integers() -> None:
    spec = create_app(Settings().api).openapi()
    unbounded, loose_ids = [], []
    for method, template, operation in _operations(spec):
        inputs = [(f"{p['in']} {p['name']}", p["schema"]) for p in operation.get("parameters", [])]
        body = _body_schema(spec, operation)
        if body is not None:
            inputs.append(("body", body))
            inputs += [(f"body {k}", v) for k, v in body.get("properties", {}).items()]
        for where, schema in inputs:
            if where == "body":
                for at, string in _strings(spec, schema, where, set()):
                    if not _bounded_string(string):
                        unbounded.append(f"{method} {template} {at}: {string}")
            elif where.endswith("_id"):
                shape = _id_shape(spec, schema)
                if shape not in [[s] for s in _ID_SCHEMAS] and shape not in [
                    [s, {"type": "null"}] for s in _ID_SCHEMAS
                ]:
                    loose_ids.append(f"{method} {template} {where}: {shape}")
            elif not where.startswith("body"):
                for at, string in _strings(spec, schema, where, set()):
                    if not _bounded_string(string):
                        unbounded.append(f"{method} {template} {at}: {string}")
    assert not unbounded, "\n".join(unbounded)
    assert not loose_ids, "\n".join(loose_ids)


# --- the types themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "7", "10", "2147483647"])
def test_canonical_ids_are_read(text: str) -> None:
    assert TypeAdapter(Id32).validate_python(text) == int(text)


@pytest.mark.parametrize("text", [*loose_spellings(12, 2_147_483_647), "", "1\r", "\t1", "1/"])
def test_loose_ids_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Id32).validate_python(text)


def test_bigserial_ids_reach_their_range() -> None:
    assert TypeAdapter(Id64).validate_python(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(ValidationError):
        TypeAdapter(Id64).validate_python(str(2**63))
    with pytest.raises(ValidationError):
        TypeAdapter(Id32).validate_python(str(2**31))


@pytest.mark.parametrize("loose", [True, False, 1.0, "1", None])
def test_body_ids_are_only_json_integers(loose: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(BodyId32).validate_python(loose)
    assert TypeAdapter(BodyId32).validate_python(1) == 1


def _bounds_error(value: object) -> str | None:
    try:
        TypeAdapter(BoundedJson).validate_python(value)
    except ValidationError as exc:
        return str(exc.errors()[0]["type"])
    return None


def test_free_form_json_limits_are_inclusive() -> None:
    assert _bounds_error(nested(MAX_JSON_DEPTH)) is None
    assert _bounds_error(nested(MAX_JSON_DEPTH + 1)) == "json_too_deep"
    lists: object = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        lists = [lists]
    assert _bounds_error({"a": lists}) is None
    assert _bounds_error({"a": [lists]}) == "json_too_deep"
    frame = len('{"s":""}')
    assert _bounds_error({"s": "x" * (MAX_JSON_BYTES - frame)}) is None
    assert _bounds_error({"s": "x" * (MAX_JSON_BYTES - frame + 1)}) == "json_too_large"
    # bytes, not characters: 塔 is three bytes in UTF-8
    assert _bounds_error({"s": "塔" * ((MAX_JSON_BYTES - frame) // 3 + 1)}) == "json_too_large"
    assert _bounds_error({"levels": {"red": float("-inf")}}) == "json_not_finite"
    assert _bounds_error({"s": "\ud800"}) == "json_invalid_text"


def test_a_hundred_thousand_levels_are_refused_without_recursion() -> None:
    assert _bounds_error(nested(100_000)) == "json_too_deep"
    wide_and_deep = {f"k{i}": nested(MAX_JSON_DEPTH - 1) for i in range(100)}
    wide_and_deep["last"] = nested(100_000)
    assert _bounds_error(wide_and_deep) == "json_too_deep"
