"""The ceilings `request_path.py` compares the service with: bare FastAPI apps answering a constant prediction, with a pydantic
request and response, one as `async def` and one as plain `def` (run in FastAPI's thread pool).

    uvicorn bare_app:async_app    uvicorn bare_app:sync_app
"""
from fastapi import FastAPI
from pydantic import BaseModel


class Request(BaseModel):
    text: str


class Answer(BaseModel):
    label: str
    confidence: float
    probabilities: dict[str, float]


ANSWER = Answer(label="positive", confidence=0.9, probabilities={"negative": 0.05, "neutral": 0.05, "positive": 0.9})
async_app, sync_app = FastAPI(), FastAPI()


@async_app.post("/predict", response_model=Answer)
async def predict_async(req: Request) -> Answer: return ANSWER


@sync_app.post("/predict", response_model=Answer)
def predict_sync(req: Request) -> Answer: return ANSWER
