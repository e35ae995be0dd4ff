"""Job records: each one's JSON round trip, and a job.json of before kinds and owners read."""

from __future__ import annotations

import json

import pytest

from audiobook_tts.books.making import PlannedChapter
from audiobook_tts.books.reading import Cover, Section
from audiobook_tts.books.records import (
    BookPlan,
    ChapterEntry,
    Job,
    JobOptions,
    Progress,
    RecordError,
    SkippedEntry,
)

# A job.json as the service wrote it before job kinds, owners and plan.json (main 2442962).
OLD_JOB = {
    "id": "0f" * 16,
    "status": "done",
    "created": 1764547200.25,
    "source": "tales.epub",
    "title": "Tales",
    "author": "A. Writer",
    "options": {
        "engine": "espeak",
        "voice": "alloy",
        "speed": 1.0,
        "chapters": "",
        "footnotes": "",
    },
    "chapters": [{"number": 2, "title": "The Café", "file": "chapter-02.mp3", "sentences": 4}],
    "skipped": [
        {
            "number": 1,
            "title": "Contents",
            "characters": 30,
            "footnotes": False,
            "skipped_because": "table of contents",
        }
    ],
    "error": None,
    "meets_acx": True,
    "chapters_found_made": 1,
}


def test_an_old_job_json_is_read_as_a_book_job_of_no_owner() -> None:
    job = Job.loads(json.dumps(OLD_JOB))
    assert (job.kind, job.owner, job.status, job.meets_acx) == ("book", "", "done", True)
    assert job.chapters == (ChapterEntry(2, "The Café", "chapter-02.mp3", 4),)
    assert job.skipped[0].skipped_because == "table of contents"
    assert job.options == JobOptions("espeak")
    # Written again it says the same, plus its kind, its owner, and what came since (the check).
    options = {**OLD_JOB["options"], "check": True}  # type: ignore[dict-item]
    assert job.to_json() == {
        **OLD_JOB,
        "kind": "book",
        "owner": "",
        "options": options,
        "check_passed": None,
    }


def test_a_job_round_trips() -> None:
    job = Job(
        id="ab" * 16,
        status="queued",
        created=1.5,
        source="b.md",
        title="T",
        author="",
        options=JobOptions("piper", "joe", 1.25, "1-2", "all"),
        chapters=(ChapterEntry(1, "One", "chapter-01.mp3", 3),),
        skipped=(SkippedEntry(3, "Notes", 10, True, "no text"),),
        owner="f" * 64,
    )
    assert Job.loads(job.dumps()) == job
    failed = job.with_status("failed", error="boom")
    assert Job.loads(failed.dumps()) == failed and "meets_acx" not in failed.to_json()


def test_each_small_record_round_trips() -> None:
    assert JobOptions.from_json(JobOptions("csm", "x", 0.5).to_json()) == JobOptions(
        "csm", "x", 0.5
    )
    entry = ChapterEntry(4, "Four", "chapter-04.mp3", 9)
    assert ChapterEntry.from_json(entry.to_json()) == entry
    skipped = SkippedEntry(1, "Contents", 0, False, None)
    assert SkippedEntry.from_json(skipped.to_json()) == skipped
    progress = Progress(1, 3, 0, 5, 12, "Two", 3.5)
    assert Progress.from_json(progress.to_json()) == progress
    assert Progress.from_json(Progress.waiting(3, 12).to_json()).seconds_left is None


def test_a_plan_round_trips_with_its_cover() -> None:
    plan = BookPlan(
        "Tales",
        "A. Writer",
        "fr",
        (PlannedChapter(Section(2, "The Café", ""), "The Café.\n\nZoë walked.", 2),),
        Cover(b"\x89PNG data", "image/png"),
    )
    again = BookPlan.loads(plan.dumps())
    assert again == plan
    assert again.book().title == "Tales" and again.book().cover == plan.cover
    assert again.chapters[0].file_name == "chapter-02.mp3"


@pytest.mark.parametrize(
    "broken",
    ["{", json.dumps({**OLD_JOB, "created": "yesterday"}), json.dumps({**OLD_JOB, "chapters": {}})],
    ids=["not-json", "created-text", "chapters-object"],
)
def test_a_broken_record_is_a_record_error(broken: str) -> None:
    with pytest.raises(RecordError):
        Job.loads(broken)
