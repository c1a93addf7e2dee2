"""Ways in for a person or a program: the HTTP API and its web page (``http``), the OpenAI-compatible
endpoints (``openai_compat``) and the terminal chat (``chat``). All of them run goals through
``agentmesh.runtime`` and read the one event stream it records (``agentmesh.events``).
"""
