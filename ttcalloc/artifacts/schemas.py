"""Artifact contracts: one versioned definition per artifact, used by every writer and reader.

Each tabular artifact is a Parquet file (or, for samples, a folder of Parquet parts) whose columns
are listed here.  Writers call :func:`ttcalloc.artifacts.validation.validate` before writing,
readers after reading, so a file that does not fit is rejected with one line naming the file and
the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ttcalloc.common.errors import ArtifactError

if TYPE_CHECKING:
    import polars as pl

DType = Literal["str", "int", "float", "bool", "datetime"]


def commands(producer: str) -> str:
    """A producer's commands in backticks: "`ttcalloc sample` (or `ttcalloc import`)"."""
    return re.sub(r"ttcalloc [a-z-]+", lambda m: f"`{m.group()}`", producer)


@dataclass(frozen=True)
class Column:
    """One column of an artifact."""

    name: str
    dtype: DType
    doc: str
    required: bool = True
    nullable: bool = False
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    """A tabular artifact: its columns, unique key, and the command that writes it."""

    name: str
    version: int
    doc: str
    producer: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    allow_extra: bool = False
    # In a folder of parts, a row whose ``superseded_by_null`` column is null replaces rows with
    # the same key where it is not (a retried sample replaces its recorded failure).
    superseded_by_null: str | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None


@dataclass(frozen=True)
class JsonSchema:
    """A JSON artifact (policy.json, report.json): its required top-level keys."""

    name: str
    version: int
    doc: str
    producer: str
    keys: tuple[tuple[str, str], ...]


PROBLEMS = Schema(
    name="problems",
    version=1,
    doc="One row per problem: the question, its gold answer, and its train/test split.",
    producer="ttcalloc data",
    key=("problem_id",),
    allow_extra=True,
    columns=(
        Column(
            "problem_id", "str", "Unique id (the 0-based row index of the source unless mapped)."
        ),
        Column("question", "str", "The problem text given to the model."),
        Column(
            "answer",
            "str",
            "Gold final answer (normalized: a number for GSM8K, LaTeX for MATH); null in an "
            "unlabeled questions table (`ttcalloc data jsonl --unlabeled`).",
            nullable=True,
        ),
        Column("split", "str", "Seeded hash split of problem_id.", allowed=("train", "test")),
        Column(
            "grader",
            "str",
            "How answers are compared: numeric, math (math-verify) or exact.",
            allowed=("numeric", "math", "exact"),
        ),
        Column("level", "int", "Difficulty level when the dataset has one.", False, True),
        Column("subject", "str", "Subject when the dataset has one.", False, True),
    ),
)

SAMPLES = Schema(
    name="samples",
    version=1,
    doc="One row per sampled answer: which problem, which model, and whether it was right.",
    producer="ttcalloc sample (or ttcalloc import)",
    key=("problem_id", "model", "sample_idx"),
    superseded_by_null="error",
    columns=(
        Column("problem_id", "str", "Problem this sample answers (a problem_id of problems)."),
        Column("model", "str", "Model (litellm model string, or the imported name)."),
        Column("sample_idx", "int", "0-based index of the sample within (problem_id, model)."),
        Column("response", "str", "Full response text.", False, True),
        Column(
            "pred_answer", "str", "Extracted, normalized answer; null when none.", nullable=True
        ),
        Column(
            "correct",
            "bool",
            "Whether pred_answer matches the gold answer; null only when the request failed.",
            nullable=True,
        ),
        Column("prompt_tokens", "int", "Prompt tokens charged for this sample.", False, True),
        Column("completion_tokens", "int", "Completion tokens of this sample.", False, True),
        Column("cost_usd", "float", "Dollar cost of this sample.", False, True),
        Column(
            "mean_logprob",
            "float",
            "Mean log-probability of the completion's tokens, when the backend returned "
            "log-probs (OpenAI-compatible servers, llama.cpp); a confidence signal for "
            "`train --learner stop`.",
            False,
            True,
        ),
        Column(
            "completion_chars",
            "int",
            "Length of the completion in characters (kept when the response text is not).",
            False,
            True,
        ),
        Column("latency_s", "float", "Wall time of the request in seconds.", False, True),
        Column("finish_reason", "str", "Why generation stopped (stop, length, ...).", False, True),
        Column("error", "str", "Error message when the request failed, else null.", False, True),
        Column("seed", "int", "Seed sent with the request.", False, True),
        Column("timestamp", "datetime", "When the sample was received (UTC).", False, True),
        Column(
            "prompt_variant",
            "str",
            "Name of the prompt variant the sample was drawn with (`--prompt-variant`, or the "
            "imported column); null: the one prompt.",
            False,
            True,
        ),
        Column(
            "answer_from",
            "str",
            "How pred_answer was read: from the response text, or by running the program it "
            "holds (a program-of-thought variant); null: text.",
            False,
            True,
            allowed=("text", "program"),
        ),
    ),
)

CURVES = Schema(
    name="curves",
    version=1,
    doc="Per problem and action: the probability of a correct answer and the expected cost.",
    producer="ttcalloc estimate",
    key=("problem_id", "action", "half"),
    columns=(
        Column("problem_id", "str", "Problem id."),
        Column("action", "str", "Readable action label, e.g. maj@4 or gpt-4o-mini:maj@4."),
        Column("model", "str", "Model the action samples from."),
        Column("strategy", "str", "How the k samples are combined.", allowed=("majority", "pass")),
        Column("k", "int", "Number of samples drawn."),
        Column("accuracy", "float", "Exact unbiased probability that the action is correct."),
        Column("cost", "float", "Expected cost of the action (unit in the file metadata)."),
        Column("half", "str", "Which samples: fit, eval or all.", allowed=("fit", "eval", "all")),
        Column("n_samples", "int", "Samples the estimate is computed from."),
    ),
)

ALLOCATION = Schema(
    name="allocation",
    version=1,
    doc="The oracle's action per problem at a budget (one block of rows per budget).",
    producer="ttcalloc solve",
    key=("budget", "problem_id"),
    columns=(
        Column("budget", "float", "Average budget B this row was solved for."),
        Column("problem_id", "str", "Problem id."),
        Column("action", "str", "Chosen (sampled, deterministic) action."),
        Column("accuracy", "float", "Accuracy of the chosen action."),
        Column("cost", "float", "Cost of the chosen action."),
        Column("action_lo", "str", "Cheaper action of the Lagrangian choice at lambda*."),
        Column("action_hi", "str", "Costlier action of a tie at lambda* (= action_lo if none)."),
        Column("p_hi", "float", "Probability of action_hi in the mixed solution."),
        Column("gap", "float", "Best accuracy minus cheapest action's accuracy for the problem."),
    ),
)

PLAN = Schema(
    name="plan",
    version=1,
    doc="The action a trained policy chooses for each new problem.",
    producer="ttcalloc allocate",
    key=("problem_id",),
    columns=(
        Column("problem_id", "str", "Problem id."),
        Column("action", "str", "Chosen action."),
        Column("cost", "float", "Expected cost of the chosen action."),
    ),
)

ANSWERS = Schema(
    name="answers",
    version=1,
    doc="One row per question answered by `ttcalloc run`: the final answer and what it cost.",
    producer="ttcalloc run",
    key=("problem_id",),
    columns=(
        Column("problem_id", "str", "Question id (the input's id field, else its row index)."),
        Column("question", "str", "The question."),
        Column(
            "final_answer",
            "str",
            "Majority vote of the samples drawn; null if none answered.",
            nullable=True,
        ),
        Column("samples", "int", "Samples received for the policy's answer."),
        Column("failed", "int", "Samples whose request failed (rerun to retry them)."),
        Column("cost", "float", "Realized cost of those samples, in the policy's cost unit."),
        Column("action", "str", "Static: the action chosen (maj@k); adaptive: stop@j."),
        Column(
            "decisions",
            "str",
            "The policy's decisions (JSON): static, mu and k; adaptive, after each round its "
            "critical price, the round's price and whether it stopped (cut_by_hard_budget "
            "when the hard budget stopped it).",
        ),
        Column(
            "complete",
            "bool",
            "Whether the policy's decision was carried out in full (not "
            "cut by the hard budget, --max-cost or failures).",
        ),
        Column("gold", "str", "Gold answer when the input has one.", nullable=True),
        Column(
            "correct",
            "bool",
            "Whether final_answer matches gold (null when unlabeled).",
            nullable=True,
        ),
        Column("uniform_answer", "str", "--compare uniform: uniform's majority vote.", False, True),
        Column("uniform_samples", "int", "--compare uniform: its samples.", False, True),
        Column("uniform_correct", "bool", "--compare uniform: whether it is right.", False, True),
        Column(
            "model",
            "str",
            "A policy over several models (actions MODEL:maj@k): the model that answered.",
            False,
            True,
        ),
        Column(
            "cost_usd",
            "float",
            "A policy over several models: the dollars its samples cost (null when unknown).",
            False,
            True,
        ),
    ),
)

METRICS = Schema(
    name="metrics",
    version=1,
    doc=(
        "One row per policy and budget of an evaluation report, scored on the test split. "
        "Uniform and oracle figures are taken at the row's own realized cost."
    ),
    producer="ttcalloc evaluate",
    key=("policy", "budget"),
    columns=(
        Column("policy", "str", "Policy name (a baseline, a learned policy, or an oracle)."),
        Column(
            "kind",
            "str",
            "What the policy is.",
            allowed=("baseline", "learned", "oracle"),
        ),
        Column("budget", "float", "Budget the row belongs to."),
        Column("target_cost", "float", "Mean cost the baselines and oracles were tuned to."),
        Column("accuracy", "float", "Mean expected accuracy on the test problems."),
        Column("accuracy_lo", "float", "Bootstrap 95% interval of the accuracy: lower end."),
        Column("accuracy_hi", "float", "Bootstrap 95% interval of the accuracy: upper end."),
        Column("cost", "float", "Mean realized cost per problem."),
        Column("cost_over_budget", "float", "cost / budget (null at budget 0).", nullable=True),
        Column("uniform_accuracy", "float", "Uniform allocation at the same cost.", nullable=True),
        Column("gain_vs_uniform", "float", "accuracy - uniform_accuracy.", nullable=True),
        Column("relative_gain", "float", "gain_vs_uniform / uniform_accuracy.", nullable=True),
        Column(
            "gain_lo",
            "float",
            "Paired bootstrap 95% interval of the gain: lower end.",
            nullable=True,
        ),
        Column(
            "gain_hi",
            "float",
            "Paired bootstrap 95% interval of the gain: upper end.",
            nullable=True,
        ),
        Column("oracle_accuracy", "float", "The oracle at the same cost.", nullable=True),
        Column("regret", "float", "oracle_accuracy - accuracy.", nullable=True),
        Column(
            "oracle_gain_share",
            "float",
            "gain_vs_uniform / (oracle_accuracy - uniform_accuracy).",
            nullable=True,
        ),
        Column(
            "imitation_accuracy",
            "float",
            "Learned policies: share of problems where the action equals the oracle's.",
            False,
            True,
        ),
        Column(
            "regret_vs_labels",
            "float",
            "Learned policies: mean accuracy lost against the oracle's per-problem actions.",
            False,
            True,
        ),
        Column("max_gap", "float", "Largest per-problem accuracy range over actions.", False, True),
        Column(
            "bound", "float", "(1 - imitation_accuracy) x max_gap: the paper's bound.", False, True
        ),
        Column(
            "mean_gap_bound",
            "float",
            "Mean accuracy range over the problems where the actions differ (tighter bound).",
            False,
            True,
        ),
        Column("bound_holds", "bool", "regret_vs_labels <= bound.", False, True),
        Column("upper_bound", "bool", "The row is an upper bound, not a deployable policy."),
        Column("problems", "int", "Test problems scored."),
        Column("params", "str", "The policy's tuned parameters, as JSON."),
    ),
)

POLICY = JsonSchema(
    name="policy",
    version=1,
    doc=(
        "policy/policy.json beside the XGBoost model(s) of a trained policy. A static policy "
        "(imitate, plugin) also has `actions` (with their costs) and `mu` (the calibrated cost "
        "multiplier); an adaptive one (stop) has `adaptive`: cap, checkpoints, strategy, the "
        "per-sample values in its state, and the two calibrated prices with the weight `p_lo`; "
        "a cascade has `cascade`: models in order, caps, checkpoints, `escalate_after`, "
        "`prompt_kinds` (the state reads whether text and program answers agree), the prices "
        "and `pace_ratio`. "
        "All record how their training samples were asked for and graded (`grader`, `prompt`, "
        "`prompt_template` for a file prompt, `strategy`; null when unknown or mixed, absent in "
        "older folders; `prompt_variants`, each variant's name, kind, label and template, when "
        "the samples were drawn with several prompts), which `ttcalloc run` uses unless told "
        "otherwise."
    ),
    producer="ttcalloc train",
    keys=(
        ("learner", "imitate or plugin (one action per question), or stop (adaptive)"),
        ("features", "the question feature names, in model order"),
        ("model_files", "the XGBoost model files (UBJ) in the folder"),
        ("budget", "the budget the policy was calibrated to"),
        ("metrics", "training metrics"),
        ("provenance", "versions and input fingerprints"),
    ),
)

REPORT = JsonSchema(
    name="report",
    version=1,
    doc="report/report.json written by evaluate.",
    producer="ttcalloc evaluate",
    keys=(
        ("budgets", "the budgets evaluated"),
        ("policies", "per policy: accuracy, cost, gain_vs_uniform and its interval"),
        ("provenance", "settings, versions and input fingerprints"),
    ),
)

TABULAR: dict[str, Schema] = {
    s.name: s for s in (PROBLEMS, SAMPLES, CURVES, ALLOCATION, PLAN, ANSWERS, METRICS)
}
JSON_ARTIFACTS: dict[str, JsonSchema] = {s.name: s for s in (POLICY, REPORT)}


def markdown(schema: Schema) -> str:
    """The schema as a Markdown table, for the docs (kept in sync by a test)."""
    lines = [
        f"### {schema.name} (v{schema.version})",
        "",
        f"{schema.doc} Written by {commands(schema.producer)}."
        + (f" Unique key: {', '.join(schema.key)}." if schema.key else ""),
        "",
        "| column | type | required | null allowed | meaning |",
        "|---|---|---|---|---|",
    ]
    for c in schema.columns:
        allowed = f" One of: {', '.join(c.allowed)}." if c.allowed else ""
        lines.append(
            f"| `{c.name}` | {c.dtype} | {'yes' if c.required else 'no'} | "
            f"{'yes' if c.nullable else 'no'} | {c.doc}{allowed} |"
        )
    if schema.allow_extra:
        lines.append("")
        lines.append("Other columns are kept as they are (metadata such as level and subject).")
    return "\n".join(lines) + "\n"


def require_labels(problems: pl.DataFrame, path: object, needs: str) -> None:
    """One line when a problems table lacks gold answers that ``needs`` (a stage) requires."""
    missing = problems["answer"].null_count() if "answer" in problems.columns else problems.height
    if missing:
        raise ArtifactError(
            f"{path}: unlabeled questions ({missing} of {problems.height} without a gold "
            f"answer); {needs} needs gold answers (use `ttcalloc run` or `allocate` on them)"
        )
