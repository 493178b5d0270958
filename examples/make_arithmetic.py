"""Write examples/arithmetic.jsonl: 48 problems from one-digit sums to multi-digit products.

A 135M-parameter model solves one-digit sums about half the time and multi-digit products almost
never, so the set has a real difficulty gradient.  Deterministic (seeded); rerun to regenerate.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

rng = random.Random(2604)
rows: list[dict[str, object]] = []


def add(kind: str, question: str, answer: int) -> None:
    rows.append({"id": f"{kind}-{len([r for r in rows if r['kind'] == kind])}", "kind": kind,
                 "question": question, "answer": str(answer)})


for _ in range(10):
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    add("sum1", f"What is {a} + {b}?", a + b)
for _ in range(8):
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    add("sum2", f"What is {a} + {b}?", a + b)
for _ in range(8):
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    add("prod1", f"What is {a} times {b}?", a * b)
names = ["Tom", "Ana", "Lee", "Sara", "Omar", "Mia"]
things = ["apples", "pens", "stickers", "marbles", "books", "coins"]
for _ in range(8):
    n, t = rng.choice(names), rng.choice(things)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    add("word", f"{n} has {a} {t} and gets {b} more. How many {t} does {n} have now?", a + b)
for _ in range(7):
    a, b = rng.randint(12, 99), rng.randint(3, 9)
    add("prod2", f"What is {a} times {b}?", a * b)
for _ in range(7):
    a, b = rng.randint(100, 999), rng.randint(12, 99)
    add("prod3", f"What is {a} times {b}?", a * b)

out = Path(__file__).with_name("arithmetic.jsonl")
out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
print(f"wrote {out}: {len(rows)} problems")
