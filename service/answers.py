"""Answers this process computed, kept with the database snapshot they were computed in.

A coverage answer is a function of the rows its statement reads. PostgreSQL hands every statement
a snapshot (pg_current_snapshot(): the transactions that had finished when it began, and those
still running), and two statements with the same snapshot see the same rows: nothing is visible to
one and not the other. So an answer's statement can carry the snapshot of the answer this process
computed last for the same question, and do its work only when its own snapshot is another
(queries of coverage, the gate); when they are equal, the answer kept is the answer. Any committed
write anywhere on the server (a submission, a retraction, a new population, an operator's UPDATE
in psql) gives later statements a new snapshot, so nothing kept outlives a change: every answer is
still computed from the rows as they are when its statement runs. A write that changes nothing
coverage reads (an audit event, a key) also moves it on, which costs only the recomputation.

Per process (gunicorn worker), per app (its database). Bounded: an Answers that holds MAX_ANSWERS
starts over. 38 provinces in 4 orders as of today are 152 answers; one of a province of 14
regencies, its rows and JSON, holds about 26 KB (tracemalloc), so a full Answers holds about 7 MB,
13 MB were every answer of a province of 29 regencies.
"""
from dataclasses import dataclass, field

MAX_ANSWERS = 256


@dataclass
class Answer:
    snapshot: str
    payload: dict
    written: tuple | None = field(default=None)  # (JSON body, ETag), once first written


class Answers:
    def __init__(self, max_answers=MAX_ANSWERS):
        self._answers = {}
        self._max = max_answers

    def get(self, question):
        return self._answers.get(question)

    def keep(self, question, answer):
        if len(self._answers) >= self._max:
            self._answers.clear()
        self._answers[question] = answer
        return answer
