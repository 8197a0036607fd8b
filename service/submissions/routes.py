"""Submissions: regency systems report counts, one or a batch; readers follow the change feed."""
import csv
import io
from http import HTTPStatus
from urllib.parse import urlencode

from flask import Blueprint, current_app, request
from marshmallow import ValidationError

from .. import audit, db, metrics
from ..auth import current_key, ensure_covers, requires
from ..clock import today
from ..errors import ApiError, Conflict, InvalidInput, NotFound, invalid_input, pointers_from_messages
from ..regions.schemas import REGENCY_CODE
from ..web import (
    decode_cursor,
    encode_cursor,
    json_body,
    json_response,
    load_body,
    load_plain_body,
    load_query,
    location_of,
    refuse_query_parameters,
    refuse_unstorable,
)
from . import idempotency, queries, recording
from .schemas import (
    CSV_COLUMNS,
    CSV_REQUIRED,
    MAX_BATCH_ITEMS,
    BatchQuery,
    FeedQuery,
    RetractionIn,
    SubmissionIn,
    change_out,
    csv_item,
    plainly_valid_item,
    submission_out,
)

blueprint = Blueprint("submissions", __name__)
_item_schema = SubmissionIn()


@blueprint.post("/v1/submissions")
@requires("submitter")
def create_submission():
    try:
        return idempotency.answer_once(_create_submission)
    except InvalidInput:
        metrics.submission_outcome("rejected")
        raise


def _create_submission(claim):
    item = load_plain_body(SubmissionIn, plainly_valid_item)
    ensure_covers(item["regency_code"])
    # Two round trips after the key check: BEGIN, the lock, the standing and the new id; the writes and COMMIT.
    with db.carried_transaction() as conn, db.together(conn, commit=True) as writes:
        outcome = recording.record_one(conn, item, key=current_key(), writes=writes)
        if outcome is None:
            raise invalid_input({"regency_code": [f"There is no regency {item['regency_code']}."]})
        payload = submission_out(outcome.row)
        path = f"/v1/submissions/{outcome.id}"
        if outcome.status == "created":
            response = json_response(payload, HTTPStatus.CREATED, headers={"Location": location_of(path)},
                                     etag=False)
            audit.record(writes, action="submission.create", resource=path, after=payload)
        else:
            response = json_response(payload, etag=False)
        if claim:
            claim.remember(writes, response)
        if outcome.status == "created":
            queries.append_changes(writes, kind="created", changes=[(item["regency_code"], item["as_of"], outcome.id)])
    metrics.submission_outcome(outcome.status)  # after the commit: only what is stored is counted
    return response


@blueprint.post("/v1/submissions/batch")
@requires("submitter")
def create_batch():
    # The body limit must be raised before anything reads the body (the Idempotency-Key hash does).
    request.max_content_length = current_app.config["SETTINGS"].max_batch_body_bytes
    return idempotency.answer_once(_create_batch)


def _create_batch(claim):
    dry_run = load_query(BatchQuery)["dry_run"]
    raw_items, lines = _batch_items()
    key = current_key()
    with db.transaction() as conn:
        try:
            items = _valid_batch(conn, raw_items, lines, key)
        except InvalidInput:
            metrics.submission_outcome("rejected", len(raw_items))  # all or nothing: every item is refused
            raise
        outcomes = recording.record(conn, items, key_id=key.id, dry_run=dry_run)
        created = [o for o in outcomes if o.status == "created"]
        summary = {
            "created": len(created),
            "unchanged": len(outcomes) - len(created),
            "with_warnings": sum(1 for o in outcomes if o.warnings),
        }
        payload = {
            "dry_run": dry_run,
            "summary": summary,
            "items": [
                {"index": o.index, "id": None if o.id is None else str(o.id), "status": o.status,
                 "warnings": o.warnings}
                for o in outcomes
            ],
        }
        status = HTTPStatus.CREATED if created and not dry_run else HTTPStatus.OK
        response = json_response(payload, status, etag=False)
        if dry_run:
            conn.rollback()  # the locks taken to classify the items go too; nothing was written
            if claim:
                claim.remember(conn, response)
            return response
        if created:
            audit.record(conn, action="submission.batch", resource="/v1/submissions/batch",
                         after={"summary": summary, "created_ids": [str(o.id) for o in created]})
        if claim:
            claim.remember(conn, response)
        queries.append_changes(
            conn, kind="created", changes=[(o.item["regency_code"], o.item["as_of"], o.id) for o in created],
        )
    metrics.submission_outcome("created", summary["created"])
    metrics.submission_outcome("unchanged", summary["unchanged"])
    return response


def _batch_items():
    """The raw items of a JSON or CSV batch, and for CSV the line each item came from."""
    if request.mimetype == "text/csv":
        return _csv_items()
    body = json_body()
    if not isinstance(body, dict):
        raise invalid_input({"_schema": ["The body must be a JSON object with items."]})
    messages = {name: ["Unknown field."] for name in body if name != "items"}
    items = body.get("items")
    if items is None:
        messages["items"] = ["Missing data for required field."]
    elif not isinstance(items, list):
        messages["items"] = ["Must be a list of submissions."]
    if messages:
        raise invalid_input(messages)
    return items, None


def _csv_items():
    try:
        text = request.get_data(cache=True).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError("The CSV body is not UTF-8.", status=HTTPStatus.BAD_REQUEST, title="Malformed CSV") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise InvalidInput(
            "The CSV header must name the columns " + ",".join(CSV_COLUMNS) + " (reference and note may be left out).",
            errors=[{"pointer": "/", "detail": "Line 1: " + "; ".join(
                [f"unknown column {c}" for c in unknown] + [f"missing column {c}" for c in missing]
                + (["a column is named twice"] if len(set(header)) != len(header) else []))}],
        )
    items, lines, errors = [], [], []
    try:
        for row in reader:
            if None in row:
                errors.append({"pointer": f"/items/{len(items)}",
                               "detail": f"Line {reader.line_num}: more values than the header has columns."})
                row.pop(None)
            items.append(csv_item(row))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise ApiError(f"The CSV body is malformed at line {reader.line_num}: {exc}.",
                       status=HTTPStatus.BAD_REQUEST, title="Malformed CSV") from exc
    if errors:
        raise InvalidInput("Some lines of the CSV are not valid; see errors.", errors=errors)
    refuse_unstorable({"items": items})  # a NUL or an unpaired surrogate: PostgreSQL text cannot hold them
    return items, lines


def _valid_batch(conn, raw_items, lines, key):
    """The loaded items, or every problem of every item (form, regency, scope, duplicates) at once.

    422 also for items outside the key's scope (DESIGN: "any invalid or out-of-scope item: 422
    listing every bad item"), so the sender sees every problem in one answer.
    """
    if not raw_items:
        raise invalid_input({"items": ["Give at least one submission."]})
    if len(raw_items) > MAX_BATCH_ITEMS:
        raise invalid_input({"items": [f"Give at most {MAX_BATCH_ITEMS} submissions in one batch."]})
    errors, items, current_day = [], [], today()
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            errors.append({"pointer": f"/items/{index}", "detail": "Must be a JSON object."})
            items.append(None)
            continue
        loaded = plainly_valid_item(raw, current_day=current_day)
        if loaded is not None:
            items.append(loaded)
            continue
        try:
            items.append(_item_schema.load(raw))
        except ValidationError as exc:
            errors.extend(pointers_from_messages(exc.messages, f"/items/{index}"))
            items.append(None)
    # Scope and the registry are checked for every well-formed code, also in items with other problems.
    codes = {index: raw.get("regency_code") for index, raw in enumerate(raw_items) if isinstance(raw, dict)}
    codes = {index: code for index, code in codes.items() if isinstance(code, str) and REGENCY_CODE.match(code)}
    known = queries.existing_regencies(conn, codes=list(codes.values()))
    for index, code in codes.items():
        if not key.covers(code):
            errors.append({"pointer": f"/items/{index}/regency_code",
                           "detail": f"Regency {code} is outside the API key's scope."})
        elif code not in known:
            errors.append({"pointer": f"/items/{index}/regency_code", "detail": f"There is no regency {code}."})
    first_of = {}
    for index, item in enumerate(items):
        if item is None:
            continue
        first = first_of.setdefault((item["regency_code"], item["as_of"]), index)
        if first != index:
            errors.append({"pointer": f"/items/{index}/as_of",
                           "detail": f"Item {first} is for the same regency and date; "
                                     "send one count per regency and date."})
    if errors:
        errors = sorted(((e if lines is None else _with_line(e, lines)) for e in errors), key=_error_order)
        raise InvalidInput(f"{len({_item_of(e) for e in errors})} item(s) are not valid or outside the API key's "
                           "scope; nothing was stored. See errors.", errors=errors)
    return items


def _item_of(error):
    parts = error["pointer"].split("/")
    return int(parts[2]) if len(parts) > 2 and parts[1] == "items" and parts[2].isdigit() else -1


def _error_order(error):
    return (_item_of(error), error["pointer"])


def _with_line(error, lines):
    index = _item_of(error)
    if index < 0:
        return error
    return {"pointer": error["pointer"], "detail": f"Line {lines[index]}: {error['detail']}"}


@blueprint.get("/v1/submissions")
@requires("reader")
def change_feed():
    query = load_query(FeedQuery)
    after = decode_cursor(query["cursor"], _position) if "cursor" in query else 0
    limit = query["limit"]
    with db.reading() as conn:
        # The high-water mark first: every position up to it was committed before this statement's
        # snapshot, so the page read next sees all of them and none can appear below it later.
        high = queries.feed_high_water(conn)
        rows = queries.changes_after(
            conn, after=after, up_to=high, limit=limit + 1, regency=query.get("regency"),
            province=query.get("province"), as_of_from=query.get("as_of_from"), as_of_to=query.get("as_of_to"),
        )
    has_more = len(rows) > limit
    rows = rows[:limit]
    # A page that reaches the high-water mark moves the cursor there, past changes the filters skip.
    position = rows[-1]["position"] if has_more else max(after, high)
    next_cursor = encode_cursor(position)
    headers = {}
    if has_more:
        args = request.args.to_dict()
        args["cursor"] = next_cursor
        headers["Link"] = f'<{request.base_url}?{urlencode(args)}>; rel="next"'
    payload = {"items": [change_out(r) for r in rows], "next_cursor": next_cursor, "has_more": has_more}
    return json_response(payload, headers=headers)


def _position(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a feed position")
    return value


def _submission_id(value):
    # ids are bigints; a larger number names no submission (and must not reach the driver)
    if value >= 2**63:
        raise NotFound(f"There is no submission {value}.")
    return value


@blueprint.get("/v1/submissions/<int:submission_id>")
@requires("reader")
def get_submission(submission_id):
    refuse_query_parameters()
    number = _submission_id(submission_id)
    with db.reading() as conn:
        row = queries.get_submission(conn, submission_id=number)
    if row is None:
        raise NotFound(f"There is no submission {submission_id}.")
    return json_response(submission_out(row))


@blueprint.post("/v1/submissions/<int:submission_id>/retract")
@requires("submitter")
def retract_submission(submission_id):
    return idempotency.answer_once(lambda claim: _retract(claim, submission_id))


def _retract(claim, submission_id):
    number = _submission_id(submission_id)
    reason = load_body(RetractionIn)["reason"]
    key = current_key()
    path = f"/v1/submissions/{number}"
    with db.transaction() as conn:
        code = queries.regency_of_submission(conn, submission_id=number)
        if code is None:
            raise NotFound(f"There is no submission {submission_id}.")
        ensure_covers(code)
        queries.lock_regencies(conn, codes=[code])
        before = submission_out(queries.get_submission(conn, submission_id=number))
        retracted = queries.retract(conn, submission_id=number, reason=reason, key_id=key.id)
        if retracted is None:
            raise Conflict(f"Submission {number} is already retracted.", slug="already-retracted",
                           title="Already retracted")
        after = submission_out(queries.get_submission(conn, submission_id=number))
        audit.record(conn, action="submission.retract", resource=path, before=before, after=after)
        response = json_response(after, etag=False)  # a POST answer is not revalidated
        if claim:
            claim.remember(conn, response)
        queries.append_changes(conn, kind="retracted", changes=[(code, retracted["as_of"], number)])
    return response
