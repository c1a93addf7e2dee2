"""The offline model's rules, split by concept; the model itself is ``agentmesh.offline``."""
