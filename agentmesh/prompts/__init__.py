"""Prompts are files with versions: ``prompts/<role>.md`` (``templates``) and every version of a role's prompt
recorded in the database — promoted, rejected or rolled back (``versions``)."""

from agentmesh.prompts.templates import PromptTemplate, list_roles, load_template
from agentmesh.prompts.versions import load_prompt

__all__ = ["PromptTemplate", "list_roles", "load_prompt", "load_template"]
