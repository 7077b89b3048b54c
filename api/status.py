"""Operator endpoint: /providers, what each provider is doing."""

from fastapi import APIRouter

router = APIRouter(tags=["operations"])
