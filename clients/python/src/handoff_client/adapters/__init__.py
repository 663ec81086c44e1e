"""Adapters: each agent framework's own approval pause, decided by handoff and answered in the
framework's own format. `tools.Tool` says what a tool's calls are to handoff; `answer.answer`
turns a final verdict into the one answer every framework understands some form of."""

from .answer import Answer, answer
from .tools import Tool

__all__ = ["Answer", "Tool", "answer"]
