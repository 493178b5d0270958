"""``ttcalloc import``: bring samples someone already has into the samples schema.

Input is JSONL, JSON, CSV or Parquet with one row per sample.  Column names are found
automatically among common spellings or mapped explicitly.  Answers are normalized and graded
against the problems' gold answers with the problem's grader; when the file has its own
``correct`` column it is kept and checked against ttcalloc's grader on a seeded sample of rows
(``regrade`` grades every row and uses ttcalloc's grades), and the agreement is reported.

:func:`import_samples` is :func:`load_samples` -> :func:`samples_frame` (pure, on DataFrames;
:mod:`~ttcalloc.stages.importer.frame`) -> :func:`write_samples`
(:mod:`~ttcalloc.stages.importer.stage`); the grades are decided in
:mod:`~ttcalloc.stages.importer.grades`; field aliases, options and the result are in
:mod:`~ttcalloc.stages.importer.options`.
"""

from ttcalloc.stages.importer.frame import Imported, samples_frame
from ttcalloc.stages.importer.grades import Grading
from ttcalloc.stages.importer.options import ALIASES, FLAG, ImportOptions, ImportResult
from ttcalloc.stages.importer.stage import import_samples, load_samples, write_samples

__all__ = [
    "ALIASES",
    "FLAG",
    "Grading",
    "ImportOptions",
    "ImportResult",
    "Imported",
    "import_samples",
    "load_samples",
    "samples_frame",
    "write_samples",
]
