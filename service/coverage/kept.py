"""Coverage answers this process computed, kept with the database snapshot they were computed in.

A coverage answer is a function of the rows its statement reads. On a primary, PostgreSQL gives
every statement a snapshot: the transactions that had finished when it began and those still
running. pg_current_snapshot() writes it as text (its xmin, its xmax and the transactions still
running; their subtransactions count with them), and two statements whose snapshots write the
same text see the same rows. So an answer's statement carries the text of the answer this process
kept for the same question, and a condition on that text alone stops its plan before it reads a
table when the text is unchanged (queries.province_as_of); the kept answer is then the answer.
Every commit on the server (a submission, a retraction, an import, an operator's UPDATE in psql)
changes the text of later statements, so a kept answer never outlives a change; a commit that
changes nothing coverage reads (an audit event, a key) changes it too, which costs only a
recomputation.

The text is prefixed with the server's start time, so that another server behind the same URL (a
promoted standby, a restored backup), whose transaction ids may repeat, never matches a kept one.
A standby (a DATABASE_READ_URL replica) gives no text: there pg_current_snapshot() leaves out the
transactions still running, so a commit could leave it unchanged, and nothing is kept.

Per process (gunicorn worker), per app (its database). Bounded: KeptAnswers that hold
MAX_ANSWERS start over. 38 provinces in 4 orders as of today are 152 answers; one of a province of
14 regencies, with its rows and JSON, holds about 26 KB (tracemalloc), one of the largest (38
regencies) about 70 KB, so at most about 7-18 MB per worker.
"""
from dataclasses import dataclass

MAX_ANSWERS = 256


@dataclass
class KeptAnswer:
    snapshot: str | None  # the server's start time and the statement's snapshot as it wrote them; None on a standby
    payload: dict
    body_and_etag: tuple | None = None  # the payload's JSON and its ETag, once first sent


class KeptAnswers:
    def __init__(self, max_answers=MAX_ANSWERS):
        self._answers = {}
        self._max = max_answers

    def __len__(self):
        return len(self._answers)

    def get(self, question):
        return self._answers.get(question)

    def clear(self):
        self._answers.clear()

    def keep(self, question, answer):
        if len(self._answers) >= self._max:
            self.clear()
        self._answers[question] = answer
