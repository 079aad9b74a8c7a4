from visgate.cli import app

app()
