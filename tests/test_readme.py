"""The README's tour runs as written."""

import re
from pathlib import Path


def test_readme_tour_runs():
    text = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    namespace: dict = {}
    exec(compile(code, "README.md tour", "exec"), namespace)
    assert namespace["main"].shape == (256, 1) and namespace["aux"].shape == (256, 1)
    assert namespace["outputs"][0].shape == (256, 1)
