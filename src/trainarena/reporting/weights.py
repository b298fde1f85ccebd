"""Published weight vectors as plain data, and their exports (json, csv, u16); nothing here prints.

The u16 export is what a Bittensor validator sets: one integer per hotkey, scaled so the largest is
65535 (engine.published_weights). It names hotkeys, not uids: a uid is a hotkey's slot in the subnet's
metagraph, which only the chain knows and which changes as neurons register, so the validator looks each
hotkey up in its metagraph (``metagraph.hotkeys.index(hotkey)``) when it sets the weights, or hands the
export that mapping (``--uids``, a JSON object of hotkey to uid) to get the uids beside the hotkeys.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from trainarena.engine.published_weights import U16_MAX, U16Vector, u16_vector
from trainarena.engine.ss58 import SS58Error, check_ss58
from trainarena.settings import WeightRules
from trainarena.store import Tournament, WeightVector, latest_vector, weight_history

CSV_FIELDS = ("competitor", "hotkey", "weight")


class ExportError(ValueError):
    """An export that cannot be made as configured; the message names the setting and the fix."""


def _tournament(tournament: Tournament | None) -> dict[str, Any] | None:
    return None if tournament is None else {"id": tournament.id, "name": tournament.name}


def vector_record(vector: WeightVector, *, with_entries: bool = True) -> dict[str, Any]:
    """One published vector: when, from which tournaments, the hybrid ratio, and (optionally) every weight."""
    record: dict[str, Any] = {
        "id": vector.id,
        "published_at": vector.published_at.isoformat(),
        "ratio": vector.ratio,
        "week": vector.week,
        "fallback": vector.fallback,
        "undistributed": vector.undistributed,
        "tournaments": {"text": _tournament(vector.text_tournament), "image": _tournament(vector.image_tournament)},
    }
    if with_entries:
        record["weights"] = export_rows(vector)
    return record


def weights_overview(session: Session) -> dict[str, Any]:
    """`weights show --json`: the latest vector with its weights (None before any), and every vector
    published, oldest first, with how many competitors it pays."""
    latest = latest_vector(session)
    history = [{**vector_record(v, with_entries=False), "paid": sum(e.weight > 0 for e in v.entries)} for v in weight_history(session)]
    return {"latest": None if latest is None else vector_record(latest), "history": history}


def export_rows(vector: WeightVector) -> list[dict[str, Any]]:
    """competitor, hotkey (None when the competitor gave none), weight; heaviest first."""
    return [{"competitor": e.competitor.name, "hotkey": e.competitor.hotkey, "weight": e.weight} for e in vector.entries]


def csv_text(vector: WeightVector) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in export_rows(vector):
        writer.writerow({**row, "hotkey": row["hotkey"] or "", "weight": repr(row["weight"])})
    return out.getvalue()


def _setting_hotkey(rules: WeightRules, field: str) -> str | None:
    hotkey = getattr(rules, field)
    if hotkey is None:
        return None
    try:
        return check_ss58(hotkey, network_format=rules.ss58_format)
    except SS58Error as error:
        raise ExportError(f"setting weights.{field} (TRAINARENA_WEIGHTS__{field.upper()}): {error}") from None


@dataclass(frozen=True)
class U16Export:
    record: dict[str, Any]
    vector: U16Vector


def u16_export(vector: WeightVector, rules: WeightRules, uids: Mapping[str, int] | None = None) -> U16Export:
    """The u16 vector of ``vector``, with whom each hotkey stands for; ExportError for a malformed hotkey setting.
    With ``uids`` (hotkey -> uid on the subnet) the record also lists each hotkey's uid; a competitor whose
    hotkey is not on the subnet is left out like one without a hotkey."""
    fallback_hotkey = _setting_hotkey(rules, "fallback_hotkey")
    remainder_hotkey = _setting_hotkey(rules, "remainder_hotkey")
    if uids is not None:
        missing = [f"weights.{field}" for field, key in (("fallback_hotkey", fallback_hotkey),
                                                         ("remainder_hotkey", remainder_hotkey)) if key and key not in uids]  # fmt: skip
        if missing:
            raise ExportError(f"the hotkey of setting {', '.join(missing)} has no uid in the uids file; "
                              "register it on the subnet or change the setting")
    entries = [(e.competitor.name, _on_subnet(e.competitor.hotkey, uids), e.weight) for e in vector.entries]
    u16 = u16_vector(entries, fallback=vector.fallback, undistributed=vector.undistributed,
                     fallback_hotkey=fallback_hotkey, remainder_hotkey=remainder_hotkey)  # fmt: skip
    record: dict[str, Any] = {
        "vector_id": vector.id,
        "published_at": vector.published_at.isoformat(),
        "hotkeys": list(u16.hotkeys),
        "weights": list(u16.values),
        "holders": [list(holders) for holders in u16.holders],
        "left_out": list(u16.left_out),
        "unassigned": u16.unassigned,
    }
    if uids is not None:
        record["uids"] = [uids[hotkey] for hotkey in u16.hotkeys]
    return U16Export(record, u16)


def _on_subnet(hotkey: str | None, uids: Mapping[str, int] | None) -> str | None:
    return hotkey if uids is None or hotkey in uids else None


def read_uids(text: str, source: str) -> dict[str, int]:
    """A uids file: one JSON object of hotkey to uid, e.g. ``dict(zip(metagraph.hotkeys, metagraph.uids.tolist()))``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ExportError(f"{source} is not JSON ({error}); write one object of hotkey to uid") from None
    if not isinstance(data, dict):
        raise ExportError(f"{source} holds a {type(data).__name__}; write one JSON object of hotkey to uid")
    bad = [key for key, uid in data.items() if not isinstance(uid, int) or isinstance(uid, bool) or not 0 <= uid <= U16_MAX]
    if bad:
        raise ExportError(f"{source}: the uids of {', '.join(bad[:5])} are not integers from 0 to {U16_MAX}")
    return data


def u16_warnings(u16: U16Vector) -> list[str]:
    """What an operator must know before setting the vector on chain."""
    warnings = []
    if u16.left_out:
        warnings.append(f"left out of the u16 vector (no hotkey registered, or none with a uid): "
                        f"{', '.join(u16.left_out)} (their weight goes with the undistributed remainder)")
    if u16.unassigned > 0.0:
        warnings.append(f"{u16.unassigned:.4f} of the vector has no hotkey to go to: the chain normalises the vector, so it "
                        "is shared among the hotkeys in it; set TRAINARENA_WEIGHTS__REMAINDER_HOTKEY (and "
                        "TRAINARENA_WEIGHTS__FALLBACK_HOTKEY in hybrid mode) to keep it apart")
    return warnings
