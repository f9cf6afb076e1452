"""ORM rows of fast-agent-db's schema. Imported by the SQL stores and the migrations only.

Importing this package registers every table on `Base.metadata`, the target Alembic compares.
"""

from mcp_agent.db.models.api_tokens import ApiTokenRow
from mcp_agent.db.models.base import VERSION_TABLE, Base
from mcp_agent.db.models.configuration import (
    ConfigChangeRow,
    McpServerRow,
    ModelRow,
    ProviderRow,
    SettingRow,
)
from mcp_agent.db.models.conversations import MessageRow, SessionRow
from mcp_agent.db.models.definitions import (
    AgentLinkRow,
    AgentRow,
    AgentServerRow,
    AgentVersionRow,
)
from mcp_agent.db.models.events import EventRow
from mcp_agent.db.models.executions import ExecutionRow, UsageTurnRow
from mcp_agent.db.models.library import PromptRow, ResourceRow
from mcp_agent.db.models.runs import (
    RunRow,
    RunStepRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookRow,
    WorkerRow,
)
from mcp_agent.db.models.state import AgentStateRow, HumanInputRequestRow

__all__ = [
    "VERSION_TABLE",
    "AgentLinkRow",
    "AgentRow",
    "AgentServerRow",
    "AgentStateRow",
    "AgentVersionRow",
    "ApiTokenRow",
    "Base",
    "ConfigChangeRow",
    "EventRow",
    "ExecutionRow",
    "HumanInputRequestRow",
    "McpServerRow",
    "MessageRow",
    "ModelRow",
    "PromptRow",
    "ProviderRow",
    "ResourceRow",
    "RunRow",
    "RunStepRow",
    "SessionRow",
    "SettingRow",
    "UsageTurnRow",
    "WebhookAttemptRow",
    "WebhookDeliveryRow",
    "WebhookRow",
    "WorkerRow",
]
