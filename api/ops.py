"""Operator endpoints: /health, /ready, /metrics."""

from fastapi import APIRouter

router = APIRouter(tags=["operations"])
