"""Every ```python block of README.md runs as written.

The blocks run in order, in one fresh process with 8 CPU devices (the "Scaling out" block is
written for 8 devices) and a temporary working folder (blocks save files). Each README section
gets one namespace, shared by its blocks, and starts from ``kfunc.utils.clear_session()``, so a
block may use what an earlier block of its own section defined, never another section's. A block
is left out only with a visible marker on the line before its fence (blank lines between are
allowed)::

    <!-- readme-test: skip (why it cannot run here) -->

and its test reports it as skipped with that reason. ``CHECKS`` asserts what some sections
promise in their comments, after the section's last block.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

README = Path(__file__).parent.parent / "README.md"

FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!--\s*readme-test:(?P<body>.*?)-->")
SKIP = re.compile(r"\s*skip \((?P<reason>[^()]*\S[^()]*)\)\s*")

# Expressions that must be true in a section's namespace after its last block, by section title.
CHECKS = {
    "A tour: the guide's two-input, two-output model": [
        "main.shape == (256, 1) and aux.shape == (256, 1)",
        "outputs[0].shape == (256, 1) and outputs[1].shape == (256, 1)",
        "np.allclose(outputs[0], main, atol=1e-5)",
    ],
    "What is supported": [
        "scores.shape == (None, 2, 10, 10)",
        "model.output.shape == (None, 1)",
    ],
    "Custom layers": [
        "model.output.shape == (None, 1)",
        "np.array_equal(model.predict(x, verbose=0), restored.predict(x, verbose=0))",
    ],
    "Masking": ["np.array_equal(masks, ids[:2] != 0)"],
    "Regularizers and constraints": ["len(model.losses) == 2"],
    "Mixed precision": [
        "dense.compute_dtype == 'bfloat16' and dense.variable_dtype == 'float32'",
        "model.predict(x, verbose=0).dtype == np.float32",
    ],
    "Scaling out": [
        "len(model.layers[1].kernel.value.sharding.device_set) == 8",
        "tuple(model.layers[1].kernel.value.sharding.spec) == (None, 'model')",
    ],
}


class Block(NamedTuple):
    index: int
    line: int  # of the opening fence, 1-based
    section: str  # the title of the nearest "## " heading above, "" before the first
    code: str  # dedented
    skip_reason: str | None


def parse_blocks(text: str) -> list[Block]:
    """The ```python blocks of ``text`` in order; raises ValueError for a malformed marker."""
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        line = before.count("\n") + 1
        headings = re.findall(r"^## (.+)$", before, re.MULTILINE)
        previous = [row.strip() for row in before.splitlines() if row.strip()]
        marker = MARKER.fullmatch(previous[-1]) if previous else None
        skip_reason = None
        if marker is not None:
            skip = SKIP.fullmatch(marker.group("body"))
            if skip is None:
                raise ValueError(
                    f"README.md line {before.rstrip().count(chr(10)) + 1}: the marker {previous[-1]!r} is not "
                    "'<!-- readme-test: skip (reason) -->'."
                )
            skip_reason = skip.group("reason").strip()
        code = textwrap.dedent(match.group("code"))
        blocks.append(Block(len(blocks), line, headings[-1].strip() if headings else "", code, skip_reason))
    return blocks


BLOCKS = parse_blocks(README.read_text())

RUNNER = textwrap.dedent(
    """
    import json
    import sys
    import traceback

    import kfunc

    job = json.load(open(sys.argv[1]))
    report = {}
    for section in job["sections"]:
        kfunc.utils.clear_session()
        namespace = {"__name__": "__readme__"}
        failed = None
        for block in section["blocks"]:
            if block["skip"]:
                continue
            if failed is not None:
                report[block["index"]] = f"not run: the block at README.md line {failed} of its section failed"
                continue
            print(f"=== README.md line {block['line']}", flush=True)
            try:
                # Leading newlines make tracebacks name the README's own line numbers.
                exec(compile("\\n" * block["line"] + block["code"], "README.md", "exec"), namespace)
                report[block["index"]] = "ok"
            except BaseException:
                report[block["index"]] = traceback.format_exc(limit=-8)
                failed = block["line"]
        if failed is None and section["checks"]:
            last = max(b["index"] for b in section["blocks"] if not b["skip"])
            for check in section["checks"]:
                try:
                    if not eval(check, namespace):
                        report[last] = f"check failed: {check}"
                        break
                except BaseException:
                    report[last] = f"check {check} raised:\\n" + traceback.format_exc(limit=-4)
                    break
    json.dump(report, open(sys.argv[2], "w"))
    """
)


def _job() -> dict:
    sections: dict[str, list[Block]] = {}
    for block in BLOCKS:
        sections.setdefault(block.section, []).append(block)
    return {
        "sections": [
            {
                "checks": CHECKS.get(title, []),
                "blocks": [{"index": b.index, "line": b.line, "code": b.code, "skip": b.skip_reason is not None}
                           for b in blocks],
            }
            for title, blocks in sections.items()
        ]
    }


@pytest.fixture(scope="module")
def readme_report(tmp_path_factory):
    """``{block index: "ok" or what went wrong}`` from one run of every README block."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "runner.py").write_text(RUNNER)
    (folder / "job.json").write_text(json.dumps(_job()))
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", os.environ.get("XLA_FLAGS", ""))
    env = os.environ | {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=8"}
    done = subprocess.run([sys.executable, "runner.py", "job.json", "report.json"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 or not (folder / "report.json").exists():
        pytest.fail(f"the README runner exited with status {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return {int(k): v for k, v in json.loads((folder / "report.json").read_text()).items()}, done.stdout


def _param(block: Block):
    marks = [pytest.mark.skip(reason=f"README.md line {block.line} ({block.section}): {block.skip_reason}")] \
        if block.skip_reason is not None else []
    slug = re.sub(r"[^a-z0-9]+", "-", block.section.lower()).strip("-")[:30]
    return pytest.param(block, marks=marks, id=f"line{block.line}-{slug}")


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_readme_block_runs(block, readme_report):
    report, output = readme_report
    result = report.get(block.index, "missing from the runner's report")
    if result != "ok":
        printed = output.split(f"=== README.md line {block.line}\n", 1)[-1].split("\n=== README.md line ", 1)[0]
        pytest.fail(f"README.md line {block.line} ({block.section}): {result}\nthe block printed:\n{printed[-2000:]}")


def test_every_python_block_is_found():
    text = README.read_text()
    assert len(BLOCKS) == text.count("```python") > 0
    assert not re.findall(r"```(?:py|python3|pycon|ipython)\b", text), "use ```python so the block runs in the tests"
    assert set(CHECKS) <= {b.section for b in BLOCKS if b.skip_reason is None}, "a check names no section with a block"


def test_a_block_is_skipped_only_with_a_visible_reason():
    text = "## A\n\n<!-- readme-test: skip (needs 8 GPUs) -->\n\n  ```python\n  x = 1\n  ```\n\n```python\ny = 2\n```\n"
    first, second = parse_blocks(text)
    assert (first.line, first.section, first.code, first.skip_reason) == (5, "A", "x = 1\n", "needs 8 GPUs")
    assert (second.line, second.code, second.skip_reason) == (9, "y = 2\n", None)
    with pytest.raises(ValueError, match=r"line 1: the marker '<!-- readme-test: skip -->' is not"):
        parse_blocks("<!-- readme-test: skip -->\n```python\nx = 1\n```\n")
