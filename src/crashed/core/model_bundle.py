"""The model artifact: an XGBoost booster in UBJSON with the encoder state inside it.

Encoder, operating threshold and feature names travel as booster attributes, so one verified
file (one sha256) is everything serving needs. Never pickle: loading a pickle from a bucket is
remote code execution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from crashed.core.encoder import Encoder

_ENCODER_ATTR = "crashed_encoder"
_THRESHOLD_ATTR = "crashed_threshold"
_NAME_ATTR = "crashed_model_name"


class ModelFormatError(ValueError):
    """The bytes are not a crashed model (not UBJSON/JSON XGBoost, or missing attributes)."""


@dataclass
class ModelBundle:
    """A booster plus its encoder and operating threshold."""

    booster: xgb.Booster
    encoder: Encoder
    threshold: float
    name: str = "crashed"

    def to_bytes(self) -> bytes:
        """UBJSON bytes with the encoder and threshold as attributes."""
        self.booster.set_attr(
            **{
                _ENCODER_ATTR: json.dumps(self.encoder.to_json(), sort_keys=True),
                _THRESHOLD_ATTR: repr(float(self.threshold)),
                _NAME_ATTR: self.name,
            }
        )
        return bytes(self.booster.save_raw(raw_format="ubj"))

    @classmethod
    def from_bytes(cls, data: bytes, nthread: int = 0) -> ModelBundle:
        """Load from UBJSON (or JSON) bytes; :class:`ModelFormatError` if it is not ours."""
        if data[:1] not in (b"{",):
            raise ModelFormatError("not an XGBoost UBJSON/JSON model")
        booster = xgb.Booster(params={"nthread": nthread} if nthread else None)
        try:
            booster.load_model(bytearray(data))
        except xgb.core.XGBoostError as error:
            first = str(error).strip().splitlines()[0] if str(error) else "unreadable"
            raise ModelFormatError(f"not a loadable XGBoost model: {first}") from None
        state = booster.attr(_ENCODER_ATTR)
        threshold = booster.attr(_THRESHOLD_ATTR)
        if state is None or threshold is None:
            raise ModelFormatError("model has no crashed encoder/threshold attributes")
        try:
            encoder = Encoder.from_json(json.loads(state))
        except (ValueError, KeyError) as error:
            raise ModelFormatError(f"model encoder state is invalid: {error}") from None
        if booster.num_features() != encoder.width:
            raise ModelFormatError(
                f"model expects {booster.num_features()} columns, encoder makes {encoder.width}"
            )
        return cls(booster, encoder, float(threshold), booster.attr(_NAME_ATTR) or "crashed")

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities for an encoded matrix (batch path)."""
        return self.booster.inplace_predict(matrix, validate_features=False)
