"""``Metric``: Keras 3's metric base class, usable eagerly and inside the compiled step.

A metric keeps its running state in variables (``add_variable``); ``update_state`` assigns new
values to them, ``result()`` reads them, ``reset_state()`` zeroes them. Eagerly, those are writes
to the variables. In ``fit`` / ``evaluate`` the state is instead a tuple of arrays threaded
through the compiled step: ``stateless_update_state(state, ...)`` lends the arrays to the
variables for the trace (``kfunc.core.binding``, the mechanism layers' weights use), runs the
metric's own ``update_state`` and returns the values it assigned; nothing is written onto the
metric object while tracing, and the step never waits on the host.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc import config
from kfunc.core.binding import bind
from kfunc.core.variable import Variable
from kfunc.errors import TrainingConfigError
from kfunc.naming import to_snake_case, unique_name


class Metric:
    """Base class of metrics: subclass it, create the state in ``__init__`` with ``add_variable``
    (or ``add_weight``), and define ``update_state(y_true, y_pred, sample_weight=None)`` and
    ``result()``. ``name`` is the key in the logs (default: the class name in snake case)."""

    def __init__(self, name=None, dtype=None):
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        self._dtype = dtype
        self._variables: list[Variable] = []
        self._metrics: list[Metric] = []

    # ------------------------------------------------------------------ state
    @property
    def dtype(self) -> str:
        return self._dtype if self._dtype is not None else config.floatx()

    def __setattr__(self, name, value):
        # Keras tracks metrics held as attributes: their variables are part of this metric's state.
        if isinstance(value, Metric) and name != "_metrics" and value is not self:
            self._require_init("hold another metric")
            if value not in self._metrics:
                self._metrics.append(value)
        elif isinstance(value, Variable):
            self._require_init("hold a variable")
            if not any(v is value for v in self._variables):
                self._variables.append(value)
        super().__setattr__(name, value)

    def _require_init(self, what: str) -> None:
        if "_variables" not in self.__dict__:
            raise TrainingConfigError(
                f"Metric {type(self).__name__} cannot {what} before Metric.__init__ ran; call "
                "super().__init__(name=name, dtype=dtype) first in your __init__."
            )

    def add_variable(self, shape, initializer, dtype=None, aggregation="sum", name=None) -> Variable:
        """A non-trainable variable of ``shape`` holding part of the metric's state."""
        self._require_init("add a variable")
        variable = Variable(initializer, shape=shape, dtype=dtype if dtype is not None else self.dtype,
                            trainable=False, name=name if name is not None else f"variable_{len(self._variables)}",
                            owner_name=self.name.replace("/", ">"), aggregation=aggregation,
                            synchronization="on_read")
        self._variables.append(variable)
        return variable

    def add_weight(self, shape=(), initializer=None, dtype=None, name=None) -> Variable:
        """``add_variable`` with Keras's defaults: a scalar, zeros."""
        return self.add_variable(shape=shape, initializer=initializer if initializer is not None else "zeros",
                                 dtype=dtype, name=name)

    @property
    def variables(self) -> list[Variable]:
        """Own variables, then those of the metrics held as attributes."""
        found = list(self.__dict__.get("_variables", []))
        for metric in self.__dict__.get("_metrics", []):
            found.extend(metric.variables)
        return found

    # ------------------------------------------------------------------ the API to define
    def update_state(self, *args, **kwargs):
        raise NotImplementedError(
            f"Metric '{self.name}' ({type(self).__name__}) must define update_state(y_true, y_pred, "
            "sample_weight=None), which assigns the metric's variables."
        )

    def result(self):
        raise NotImplementedError(
            f"Metric '{self.name}' ({type(self).__name__}) must define result(), computed from its variables."
        )

    def reset_state(self) -> None:
        """Zero every variable (Keras's default)."""
        for variable in self.variables:
            variable.assign(jnp.zeros(variable.shape, variable.dtype))

    def __call__(self, *args, **kwargs):
        """``update_state(...)`` then ``result()``."""
        self._require_init("be called")
        self.update_state(*args, **kwargs)
        return self.result()

    # ------------------------------------------------------------------ pure form (the compiled step)
    def stateless_update_state(self, metric_variables, *args, **kwargs) -> tuple:
        """The variables' values after ``update_state(*args, **kwargs)`` from ``metric_variables``
        (one array per ``variables`` entry), computed without writing to the metric."""
        variables = self._checked(metric_variables, "stateless_update_state")
        with bind(variables, list(metric_variables)) as binding:
            returned = self.update_state(*args, **kwargs)
        if len(self.variables) != len(variables):
            raise TrainingConfigError(
                f"Metric '{self.name}' ({type(self).__name__}) created variables inside update_state while "
                "training; create them in __init__ with self.add_variable(...) so that fit can carry them."
            )
        if returned is not None and not binding.updates:
            raise TrainingConfigError(
                f"Metric '{self.name}' ({type(self).__name__}).update_state returned {type(returned).__name__} "
                "and assigned none of its variables; update_state must update the state in place, e.g. "
                "self.total.assign_add(...), and result() must read it."
            )
        return tuple(binding.values[id(v)] for v in variables)

    def stateless_result(self, metric_variables):
        """``result()`` computed from ``metric_variables`` instead of the variables' values."""
        variables = self._checked(metric_variables, "stateless_result")
        with bind(variables, list(metric_variables)):
            value = self.result()
            if isinstance(value, Variable):  # Keras code often returns the variable itself
                value = value.value
        if not hasattr(value, "dtype") and not isinstance(value, (int, float)):
            raise TrainingConfigError(
                f"Metric '{self.name}' ({type(self).__name__}).result() returned {type(value).__name__}; it must "
                "return a number or an array computed from the metric's variables."
            )
        return jnp.asarray(value)

    def stateless_reset_state(self) -> tuple:
        """The variables' values right after ``reset_state()``, computed without writing to the metric."""
        variables = self.variables
        with bind(variables, [jnp.zeros(v.shape, v.dtype) for v in variables]) as binding:
            self.reset_state()
        return tuple(binding.values[id(v)] for v in variables)

    def _checked(self, metric_variables, method: str) -> list[Variable]:
        variables = self.variables
        if len(metric_variables) != len(variables):
            raise TrainingConfigError(
                f"Metric '{self.name}' ({type(self).__name__}).{method} received {len(metric_variables)} values; "
                f"it needs one per entry of .variables ({len(variables)})."
            )
        return variables

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"
