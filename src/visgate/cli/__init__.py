"""The `visgate` command line (typer + rich); `visgate.client` beside it is the SDK that the
deployment commands call.

`app` is exported here so the console script (`visgate.cli:app`) and `python -m visgate`
start the same command.
"""

from visgate.cli.main import app

__all__ = ["app"]
