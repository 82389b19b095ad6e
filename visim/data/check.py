"""``visim data check``: what a dataset holds and what would go wrong evaluating it.

Per split: images, identities, cameras. Problems: empty splits, unreadable images, queries
without a valid positive under the configured protocol (with the reason), identities shared
by train and test. Parser drops (junk images) are reported but are not problems.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import attrs

from visim import contract_checks
from visim.data.bad_images import BadImage, find_bad_images
from visim.data.records import SPLITS, Record, ReidData, preview, split_problems, train_test_overlap
from visim.evaluation.options import JUNK_PID, protocol_named

NOT_IN_GALLERY = "identity not in gallery"
SAME_CAMERA = "every positive shares its camera"
ONLY_ITSELF = "its only positive is itself"
JUNK = f"its identity is junk ({JUNK_PID})"


@attrs.frozen
class SplitStats:
    images: int
    identities: int
    cameras: int

    @classmethod
    def of(cls, records: Sequence[Record]) -> SplitStats:
        return cls(len(records), len({r.pid for r in records}), len({r.camid for r in records}))


@attrs.frozen
class QueryProblem:
    index: int
    record: Record
    reason: str

    def __str__(self) -> str:
        r = self.record
        return f"query[{self.index}] {r.path} (pid {r.pid}, camera {r.camid}): {self.reason}"


def queries_without_positive(query: Sequence[Record], gallery: Sequence[Record], protocol: str) -> list[QueryProblem]:
    """Queries that no gallery item can match under ``protocol``: what it ignores is
    :class:`visim.evaluation.options.Protocol`'s (the evaluation applies the same rules)."""
    ignores = protocol_named(protocol)
    per_pid = Counter(r.pid for r in gallery)
    per_pid_camera = Counter((r.pid, r.camid) for r in gallery)
    problems = []
    for index, record in enumerate(query):
        positives = per_pid[record.pid]
        if positives == 0:
            problems.append(QueryProblem(index, record, NOT_IN_GALLERY))
        elif ignores.junk and record.pid == JUNK_PID:
            problems.append(QueryProblem(index, record, JUNK))
        elif ignores.same_camera and positives == per_pid_camera[record.pid, record.camid]:
            problems.append(QueryProblem(index, record, SAME_CAMERA))
        elif ignores.itself and positives == 1 and index < len(gallery) and gallery[index].pid == record.pid:
            problems.append(QueryProblem(index, record, ONLY_ITSELF))
    return problems


@attrs.frozen
class DataReport:
    name: str
    root: str | None
    protocol: str
    stats: dict[str, SplitStats]
    dropped: dict[str, int]
    empty_splits: list[str]
    bad_images: list[BadImage]
    no_positive: list[QueryProblem]
    overlap: list[int]

    @property
    def problem_count(self) -> int:
        return len(self.empty_splits) + len(self.bad_images) + len(self.no_positive) + bool(self.overlap)

    @property
    def clean(self) -> bool:
        return self.problem_count == 0

    def format(self, limit: int = 20) -> str:
        lines = [f"dataset {self.name}" + (f" at {self.root}" if self.root else "")]
        lines.append(f"  {'split':<8} {'images':>8} {'identities':>11} {'cameras':>8}")
        for split, s in self.stats.items():
            lines.append(f"  {split:<8} {s.images:>8} {s.identities:>11} {s.cameras:>8}")
        for reason, count in self.dropped.items():
            lines.append(f"dropped at load: {count} {reason}")
        lines += [f"problem: {message}" for message in self.empty_splits]
        lines += listing("unreadable image(s)", self.bad_images, limit)
        lines += listing(
            f"quer{'y' if len(self.no_positive) == 1 else 'ies'} without a valid positive "
            f"(protocol {self.protocol})",
            self.no_positive,
            limit,
        )
        if self.overlap:
            lines.append(
                f"problem: {len(self.overlap)} identities are in both train and test: {preview(self.overlap)}"
            )
        n = self.problem_count
        lines.append("data check: clean" if self.clean else f"data check: {n} problem{'s' if n != 1 else ''}")
        return "\n".join(lines)


def listing(title: str, items: Sequence, limit: int) -> list[str]:
    if not items:
        return []
    lines = [f"problem: {len(items)} {title}:"]
    lines += [f"  {item}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return lines


def check_data(config, *, read_images: bool = True) -> DataReport:
    """Check the dataset of ``config`` (an Experiment). Raises DataError if it cannot be loaded."""
    data: ReidData = contract_checks.build(config.data.dataset)
    training = config.train is not None
    return DataReport(
        name=data.name or config.data.dataset.name,
        root=data.root,
        protocol=config.test.protocol,
        stats={split: SplitStats.of(data.split(split)) for split in SPLITS},
        dropped=dict(data.dropped),
        empty_splits=split_problems(data, train=training),
        bad_images=find_bad_images(data, SPLITS, read=read_images),
        no_positive=queries_without_positive(data.query, data.gallery, config.test.protocol),
        overlap=train_test_overlap(data),
    )
