from .backbones import BACKBONES  # noqa: F401
from .heads import HEADS  # noqa: F401
from .policy import ActionChunk, Policy, PolicyConfig  # noqa: F401
from .stats import Stats  # noqa: F401
