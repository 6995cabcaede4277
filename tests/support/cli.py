"""Running the `orglogin` command in the test process, and its error contract (spec 4)."""

from __future__ import annotations

from orglogin.cli import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `orglogin ARGV...`, in this process."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(result: tuple[int, str, str], fragment: str = "") -> None:
    """Bad input: exit 2, exactly one `orglogin: error: ...` line on stderr, nothing on stdout."""
    code, out, err = result
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("orglogin: error: "), err
    assert fragment in lines[0], lines[0]
    assert out == ""
