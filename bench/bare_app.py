"""The baseline: a bare FastAPI app that answers `{}` (what the framework alone costs)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    return {}
