"""Custom functions: loading .py/.json files, the specs sent to the server, and running."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aivoco.errors import UsageError
from aivoco.session.functions import FunctionOutcome, FunctionRegistry, load_functions

FIXTURES = Path(__file__).parent / "fixtures" / "functions"
WEATHER = FIXTURES / "weather_tools.py"


def param(name: str, type_: str, description: str = "", required: bool = True) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, "required": required}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_json(tmp_path: Path, data: Any, name: str = "functions.json") -> Path:
    return write(tmp_path, name, json.dumps(data))


def load_error(path: Path) -> str:
    with pytest.raises(UsageError) as info:
        load_functions(path)
    return str(info.value)


def failed(outcome: FunctionOutcome, error: str) -> bool:
    return (
        not outcome.ok
        and outcome.error == error
        and outcome.result == {"error": error, "status": "failed"}
    )


@pytest.fixture(scope="module")
def weather() -> FunctionRegistry:
    return load_functions(WEATHER)


def tool(script: str, *args: str) -> list[str]:
    return [sys.executable, str(FIXTURES / script), *args]


@pytest.fixture
def commands(tmp_path: Path) -> FunctionRegistry:
    # Built at test time so the command runs this very interpreter.
    city = {"name": "city", "type": "string", "description": "City", "required": True}
    pids = str(tmp_path / "pids")
    data = [
        {"name": "echo", "description": "Echo", "parameters": [city],
         "command": tool("tool_echo.py", "x")},
        {"name": "plain", "description": "Plain text", "command": tool("tool_plain.py")},
        {"name": "broken", "description": "Fails", "command": tool("tool_fail.py")},
        {"name": "hang", "description": "Hangs", "command": tool("tool_slow.py", pids)},
        {"name": "version", "description": "Static", "result": {"version": "1.2", "ok": True}},
        {"name": "nothing", "description": "Static null", "result": None},
    ]  # fmt: skip
    return load_functions(write_json(tmp_path, data))


# --- .py files: specs ---------------------------------------------------------------


def test_python_specs_exactly(weather: FunctionRegistry) -> None:
    assert weather.names == (
        "get_weather", "add", "forecast", "search", "echo_all", "note", "fail", "slow",
        "greet", "odd_result",
    )  # fmt: skip
    wire = {spec.name: spec.to_wire() for spec in weather.specs}
    assert wire["get_weather"] == {
        "name": "get_weather",
        "description": "Get the current weather for a city.\n\n"
        "Uses a fixed table, so it works offline.\n\n"
        "Returns:\n    The temperature and a short summary.",
        "parameters": [
            param("city", "string", 'Name of the city, for example "Paris".'),
            param("unit", "string", 'Temperature unit. One of: "c", "f".', required=False),
        ],
    }
    assert wire["add"] == {
        "name": "add",
        "description": "Add two integers.",
        "parameters": [param("a", "integer"), param("b", "integer")],
    }
    assert wire["forecast"] == {
        "name": "forecast",
        "description": "Forecast for the next days (reST-style docstring).\n\n"
        ":returns: a forecast.",
        "parameters": [
            param("city", "string", "The city."),
            param("days", "integer", "How many days ahead.", required=False),
            param("hourly", "boolean", required=False),
        ],
    }
    # No docstring, an unannotated parameter and *rest (not a parameter).
    assert wire["search"] == {
        "name": "search",
        "description": "",
        "parameters": [
            param("query", "string"),
            param("tags", "array"),
            param("filters", "object"),
            param("limit", "number", required=False),
        ],
    }
    assert wire["echo_all"]["parameters"] == []
    assert wire["note"]["parameters"] == [param("text", "string", required=False)]


def test_python_module_is_isolated(tmp_path: Path) -> None:
    path_before = list(sys.path)
    load_functions(WEATHER)
    load_functions(WEATHER)  # twice: each load is a fresh module
    assert sys.path == path_before
    assert "weather_tools" not in sys.modules
    names = [
        name
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None) == str(WEATHER)
    ]
    assert len(names) >= 2
    assert all(name.startswith("_aivoco_functions_") for name in names)


@pytest.mark.parametrize(
    ("docstring", "description", "params"),
    [
        (
            "Summary.\n\nParameters:\n    x (int): First\n        line.\n    y: Second.\n",
            "Summary.",
            ("First line.", "Second."),
        ),
        (
            "Summary.\n\n:param x: Ex.\n:param int y: Why.\n:type y: int\n\nTail text.",
            "Summary.\n\nTail text.",
            ("Ex.", "Why."),
        ),
        ("Just one line.", "Just one line.", ("", "")),
    ],
)
def test_docstring_styles(
    tmp_path: Path, docstring: str, description: str, params: tuple[str, str]
) -> None:
    source = f"def f(x: int, y: int = 1) -> int:\n    {docstring!r}\n    return x\n"
    (spec,) = load_functions(write(tmp_path, "f.py", source)).specs
    assert spec.description == description
    assert [p.description for p in spec.parameters] == list(params)


def test_python_type_mapping(tmp_path: Path) -> None:
    source = (
        "from typing import Any, List, Literal, Optional, Tuple, Union\n"
        "def f(a: List[int], b: Tuple[int, ...], c: tuple, d: dict, e: Any,\n"
        "      g: Union[int, float], h: Optional[Literal[1, 2]], i: 'float | None' = 0.5,\n"
        "      *, k: bool) -> None:\n"
        "    pass\n"
    )
    (spec,) = load_functions(write(tmp_path, "types.py", source)).specs
    assert [(p.name, p.type, p.required) for p in spec.parameters] == [
        ("a", "array", True),
        ("b", "array", True),
        ("c", "array", True),
        ("d", "object", True),
        ("e", "string", True),
        ("g", "number", True),
        ("h", "integer", False),
        ("i", "number", False),
        ("k", "boolean", True),
    ]
    assert spec.parameters[6].description == "One of: 1, 2."


def test_python_sibling_imports_work(tmp_path: Path) -> None:
    helper = f"aivoco_test_helper_{os.getpid()}"
    write(tmp_path, f"{helper}.py", "def double(x: int) -> int:\n    return 2 * x\n")
    path = write(
        tmp_path,
        "uses_helper.py",
        f"from {helper} import double\n\ndef quad(x: int) -> int:\n    return double(double(x))\n",
    )
    try:
        registry = load_functions(path)
    finally:
        sys.modules.pop(helper, None)
    assert registry.names == ("quad",)  # the imported `double` is not exposed
    assert registry.run("quad", {"x": 3}).result == 12


# --- .py files: errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\n\ndef f(:\n    pass\n", ": line 3: SyntaxError: invalid syntax\n    def f(:"),
        (
            "import json\nimport aivoco_no_such_module\n",
            ": line 2: ModuleNotFoundError: No module named 'aivoco_no_such_module'",
        ),
        ("def f() -> None:\n    pass\n\n1 / 0\n", ": line 4: ZeroDivisionError: division by zero"),
        ("import sys\nsys.exit('bye')\n", ": line 2: SystemExit: bye"),
    ],
)
def test_python_import_errors(tmp_path: Path, source: str, expected: str) -> None:
    path = write(tmp_path, "bad.py", source)
    message = load_error(path)
    assert message.startswith(f"{path}")
    assert expected in message
    assert not [m for m in list(sys.modules.values()) if getattr(m, "__file__", "") == str(path)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\nfrom os import getcwd\n\ndef _hidden() -> None:\n    pass\n",
         "defines no functions"),
        ("def f(x: complex) -> None:\n    pass\n",
         "function f: parameter 'x': unsupported type complex"),
        ("def f(x: int | str) -> None:\n    pass\n",
         "parameter 'x': unsupported union type int | str"),
        (
            "from typing import Literal\ndef f(x: Literal['a', 1]) -> None:\n    pass\n",
            "parameter 'x': Literal values must be all strings or all integers",
        ),
        ("def f(x: int, /) -> None:\n    pass\n", "positional-only parameter 'x' is not supported"),
        ("def f(x: 'Missing') -> None:\n    pass\n", "cannot resolve type hints: NameError:"),
        ("def caf\u00e9() -> None:\n    pass\n", "invalid function name 'caf\u00e9'"),
    ],
)  # fmt: skip
def test_python_definition_errors(tmp_path: Path, source: str, expected: str) -> None:
    path = write(tmp_path, "defs.py", source)
    message = load_error(path)
    assert expected in message
    assert str(path) in message


def test_file_level_errors(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.py") == f"functions file not found: {tmp_path / 'nope.py'}"
    assert load_error(tmp_path) == f"functions file not found: {tmp_path}"
    yaml = write(tmp_path, "f.yaml", "- name: x\n")
    assert load_error(yaml) == f"functions file {yaml} must end in .py or .json, not '.yaml'"


# --- .py files: running -------------------------------------------------------------


def test_python_outcomes(weather: FunctionRegistry) -> None:
    ok = weather.run("get_weather", {"city": "Paris", "unit": "f"})
    assert ok.ok and ok.error is None
    assert ok.result == {"city": "Paris", "temperature": 65.3, "unit": "f"}
    assert ok.duration_ms >= 0
    assert weather.run("add", {"a": 2, "b": 3, "unexpected": 1}).result == 5
    assert weather.run("echo_all", {"x": [1], "y": None}).result == {"x": [1], "y": None}
    assert weather.run("note", {}).result == "note: None"
    assert weather.run("greet", {"name": "Ann"}).result == "Hello, Ann!"
    # Dataclass -> dict; other objects -> str(); sets and tuples -> lists.
    assert weather.run("forecast", {"city": "Oslo"}).result == {
        "city": "Oslo",
        "days": 2,
        "temperatures": [4.0, 4.0],
    }
    assert weather.run("odd_result", {"kind": "object"}).result == "<opaque thing>"
    assert weather.run("odd_result", {"kind": "set"}).result == {"tags": ["a"], "pair": [1, 2]}
    assert weather.run("get_weather", {"city": "Oslo"}, timeout_s=5).result["unit"] == "c"
    assert weather.run("echo_all", None).result == {}


def test_python_failures(weather: FunctionRegistry) -> None:
    assert failed(
        weather.run("get_weather", {"city": "Atlantis"}), "ValueError: unknown city 'Atlantis'"
    )
    assert failed(weather.run("add", {"a": 1}), "missing required argument(s): b")
    assert failed(weather.run("fail", {}), "RuntimeError: boom")
    assert failed(weather.run("fail", {"reason": ""}), "RuntimeError")
    assert failed(weather.run("nope", {}), "unknown function 'nope'")
    assert failed(weather.run("add", [1, 2]), "arguments must be an object, got list")
    nan = weather.run("odd_result", {"kind": "nan"})
    # Python 3.13 appends the offending value (": nan") to json's message.
    assert not nan.ok and nan.error is not None
    assert nan.error.startswith(
        "result is not JSON-serialisable: "
        "ValueError: Out of range float values are not JSON compliant"
    )
    assert nan.result == {"error": nan.error, "status": "failed"}
    assert failed(
        weather.run("odd_result", {"kind": "loop"}),
        "result is not JSON-serialisable: ValueError: Circular reference detected",
    )
    # A wrong argument type is the function's own TypeError, reported as a failure.
    outcome = weather.run("add", {"a": 1, "b": "x"})
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.startswith("TypeError: ")  # fmt: skip


def test_python_timeout(weather: FunctionRegistry) -> None:
    start = time.monotonic()
    outcome = weather.run("slow", {"seconds": 2.0}, timeout_s=0.2)
    assert time.monotonic() - start < 1.5
    assert failed(outcome, "timed out after 0.2 s")
    assert 150 < outcome.duration_ms < 1500


MEET_PY = """
import os, time


def meet(me: str, other: str, folder: str) -> bool:
    \"\"\"Mark my arrival, then wait (up to 10 s) for the other call's.\"\"\"
    open(os.path.join(folder, me), "w").close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(folder, other)):
            return True
        time.sleep(0.01)
    return False
"""

MEET_CMD = """
import json, os, sys, time

args = json.load(sys.stdin)
open(os.path.join(args["folder"], args["me"]), "w").close()
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    if os.path.exists(os.path.join(args["folder"], args["other"])):
        print(json.dumps(True))
        break
    time.sleep(0.01)
else:
    print(json.dumps(False))
"""


def run_pair(registry: FunctionRegistry, folder: Path) -> list[FunctionOutcome]:
    """Two calls of `meet` at once. Each marks its arrival and waits for the other's:
    run one after the other, the first would give up waiting; run concurrently, both
    meet. No timing is asserted."""
    outcomes: list[FunctionOutcome] = []
    threads = [
        threading.Thread(
            target=lambda me=me, other=other: outcomes.append(
                registry.run("meet", {"me": me, "other": other, "folder": str(folder)}, 20)
            )
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_python_calls_run_concurrently(tmp_path: Path) -> None:
    registry = load_functions(write(tmp_path, "meet.py", MEET_PY))
    outcomes = run_pair(registry, tmp_path)
    assert [o.result for o in outcomes] == [True, True], outcomes


# --- .json files: specs -------------------------------------------------------------


def test_json_specs_never_carry_command_or_result(commands: FunctionRegistry) -> None:
    assert commands.names == ("echo", "plain", "broken", "hang", "version", "nothing")
    assert commands.specs[0].to_wire() == {
        "name": "echo",
        "description": "Echo",
        "parameters": [param("city", "string", "City")],
    }
    assert commands.specs[4].to_wire() == {
        "name": "version",
        "description": "Static",
        "parameters": [],
    }
    for spec in commands.specs:
        wire = spec.to_wire()
        assert set(wire) == {"name", "description", "parameters"}
        assert "tool_" not in json.dumps(wire) and "1.2" not in json.dumps(wire)


def test_json_defaults(tmp_path: Path) -> None:
    path = write_json(
        tmp_path, [{"name": "x", "parameters": [{"name": "a", "type": "object"}], "result": 1}]
    )
    (spec,) = load_functions(path).specs
    assert spec.to_wire() == {
        "name": "x",
        "description": "",
        "parameters": [param("a", "object", required=False)],
    }


X = {"name": "x", "result": 1}
P = {"name": "a", "type": "string"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "x"}, "expected a JSON list of functions, got an object"),
        ([], "defines no functions"),
        (["x"], "function #1: expected an object, got a string"),
        ([{"description": "d", "result": 1}], "function #1: 'name' must be a string, got missing"),
        ([{"name": 3, "result": 1}], "function #1: 'name' must be a string, got a number"),
        ([{**X, "comand": ["ls"]}], "function #1 ('x'): unknown key(s) 'comand' "
         "(allowed: command, description, name, parameters, result)"),
        ([{**X, "description": 5}], "('x'): 'description' must be a string, got a number"),
        ([{**X, "parameters": {}}], "('x'): 'parameters' must be a list, got an object"),
        ([{**X, "parameters": [{"name": "a"}]}],
         "('x'), parameter #1: 'type' must be a string, got missing"),
        ([{**X, "parameters": [{**P, "type": "str"}]}], "parameter #1: unsupported type 'str' "
         "(use string, integer, number, boolean, array, object)"),
        ([{**X, "parameters": [{**P, "required": "yes"}]}],
         "parameter #1: 'required' must be a boolean, got a string"),
        ([{**X, "parameters": [{**P, "enum": ["b"]}]}], "parameter #1: unknown key(s) 'enum'"),
        ([{**X, "parameters": [P, P]}], "function #1 ('x'): function 'x': duplicate parameter 'a'"),
        ([{**X, "name": "has space"}], "function #1 ('has space'): invalid function name"),
        ([{**X, "parameters": [{**P, "name": ""}]}], "invalid function parameter name"),
        ([X, {**X, "result": 2}], "duplicate function name 'x'"),
        ([{"name": "x"}], "('x'): give exactly one of 'command' (argv list) or 'result'"),
        ([{**X, "command": ["ls"]}], "give exactly one of 'command'"),
        ([{"name": "x", "command": "ls -l"}], "'command' must be a non-empty list of strings"),
        ([{"name": "x", "command": []}], "'command' must be a non-empty list of strings"),
        ([{"name": "x", "command": ["ls", 1]}], "'command' must be a non-empty list of strings"),
        ([{"name": "x", "command": ["aivoco-no-such-tool"]}],
         "('x'): command 'aivoco-no-such-tool' not found on PATH"),
    ],
)  # fmt: skip
def test_json_shape_errors(tmp_path: Path, data: Any, expected: str) -> None:
    path = write_json(tmp_path, data)
    message = load_error(path)
    assert expected in message
    assert str(path) in message


def test_json_syntax_and_encoding_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '[\n  {"name": "x",\n   "result": 1,,}\n]')
    assert load_error(path) == (
        f"{path}: invalid JSON at line 3, column 16: "
        "Expecting property name enclosed in double quotes"
    )
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'[{"name": "caf\xe9", "result": 1}]')
    assert load_error(latin).startswith(f"cannot read {latin}: UnicodeDecodeError: ")


def test_json_relative_command_is_next_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "tools"
    folder.mkdir()
    script = write(folder, "tool.sh", '#!/bin/sh\necho \'{"from": "script"}\'\n')
    path = write_json(folder, [{"name": "t", "command": ["./tool.sh"]}])
    monkeypatch.chdir(tmp_path)  # elsewhere: must not matter
    assert load_error(path).endswith(f"command '{script}' is not an executable file")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert load_functions(path).run("t", {}).result == {"from": "script"}


def test_json_bare_command_uses_path(tmp_path: Path) -> None:
    registry = load_functions(write_json(tmp_path, [{"name": "cat", "command": ["cat"]}]))
    assert registry.run("cat", {"a": [1, "b"]}).result == {"a": [1, "b"]}


# --- .json files: running -----------------------------------------------------------


def test_command_outcomes(commands: FunctionRegistry) -> None:
    echo = commands.run("echo", {"city": "Paris", "n": 2})
    assert echo.ok, echo
    assert echo.result == {"received": {"city": "Paris", "n": 2}, "argv": ["x"]}
    assert commands.run("plain", {}).result == {"output": "It is sunny.\n  Light wind."}
    assert commands.run("version", {"anything": 1}).result == {"version": "1.2", "ok": True}
    nothing = commands.run("nothing", {})
    assert nothing.ok and nothing.result is None


def test_command_failure_reports_code_and_stderr_tail(commands: FunctionRegistry) -> None:
    tail = "\n".join(f"problem line {i}" for i in range(6, 11))
    assert failed(commands.run("broken", {}), f"command exited with code 3: {tail}")


def test_command_killed_by_signal(tmp_path: Path) -> None:
    script = write(tmp_path, "die.py", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    registry = load_functions(
        write_json(tmp_path, [{"name": "die", "command": [sys.executable, str(script)]}])
    )
    assert failed(registry.run("die", {}), "command was killed by signal SIGTERM")


def alive(pid: int) -> bool:
    # A killed orphan may linger as a zombie until PID 1 reaps it: that counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_command_timeout_kills_the_process_group(
    commands: FunctionRegistry, tmp_path: Path
) -> None:
    start = time.monotonic()
    outcome = commands.run("hang", {}, timeout_s=1.5)
    assert time.monotonic() - start < 5
    assert failed(outcome, "timed out after 1.5 s")
    tool_pid, child_pid = map(int, (tmp_path / "pids").read_text().split())
    deadline = time.monotonic() + 3
    while (alive(tool_pid) or alive(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(tool_pid)
    assert not alive(child_pid)  # the tool's own child went with its process group


def test_commands_run_concurrently(tmp_path: Path) -> None:
    script = write(tmp_path, "meet_cmd.py", MEET_CMD)
    registry = load_functions(
        write_json(tmp_path, [{"name": "meet", "command": [sys.executable, str(script)]}])
    )
    outcomes = run_pair(registry, tmp_path)
    assert [o.result for o in outcomes] == [True, True], outcomes


# --- the registry itself ------------------------------------------------------------


def test_registry_never_raises_and_handles_handler_bugs(weather: FunctionRegistry) -> None:
    def bad_handler(arguments: Any, timeout_s: float) -> Any:
        raise KeyError("k")

    spec = weather.specs[1]
    registry = FunctionRegistry([(spec, bad_handler)])
    assert failed(registry.run("add", {"a": 1, "b": 2}), "KeyError: 'k'")
    assert FunctionRegistry().specs == () and FunctionRegistry().names == ()
    with pytest.raises(UsageError, match="duplicate function name 'add'"):
        FunctionRegistry([(spec, bad_handler), (spec, bad_handler)])
