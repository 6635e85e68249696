"""``kfunc.callbacks``: Keras 3's callbacks for fit, evaluate and predict."""

from kfunc.train.backup import BackupAndRestore, BackupError
from kfunc.train.callbacks import (
    Callback,
    CSVLogger,
    History,
    LambdaCallback,
    LearningRateScheduler,
    TerminateOnNaN,
)
from kfunc.train.model_checkpoint import ModelCheckpoint
from kfunc.train.monitor_callbacks import EarlyStopping, MonitorCallback, ReduceLROnPlateau
from kfunc.train.progbar_logger import ProgbarLogger
from kfunc.train.tensorboard import TensorBoard

__all__ = [
    "BackupAndRestore",
    "BackupError",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "MonitorCallback",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]
