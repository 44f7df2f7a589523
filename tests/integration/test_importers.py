"""`spoc import`: ServiceNow audit exports and IEEE XES logs become input events that replay without a
rejection and keep the sources' own counts and handoffs.

The real logs are read from ``../shared/external_data`` (or ``$SPOC_EXTERNAL_DATA``); those tests skip,
saying so, when the folder is absent.  The logs are never copied into the repository.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zipfile
from collections import Counter
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import orjson
import pytest

from spoc.cli import main
from tests.conftest import ROOT
from tests.replaying import rows, run_replay

EXTERNAL = Path(os.environ.get("SPOC_EXTERNAL_DATA", ROOT.parent / "shared" / "external_data"))
SERVICENOW = EXTERNAL / "uci498_incident_event_log.zip"
BPIC_2013 = EXTERNAL / "bpic2013_incidents.xes.gz"
HELPDESK = EXTERNAL / "helpdesk_italian_company.xes.gz"


def real(log: Path) -> Path:
    if not log.is_file():
        pytest.skip(f"{log} is absent: the real public logs live in ../shared/external_data (or $SPOC_EXTERNAL_DATA)")
    return log


def imported(tmp_path: Path, *command: str) -> tuple[list[dict[str, Any]], Path]:
    out = tmp_path / "imported.jsonl"
    assert main(["import", *command, "--out", str(out)]) == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()], out


SMALL_EXPORT = """number,incident_state,active,reassignment_count,reopen_count,sys_mod_count,made_sla,caller_id,opened_by,\
opened_at,sys_created_by,sys_created_at,sys_updated_by,sys_updated_at,contact_type,location,category,subcategory,\
u_symptom,cmdb_ci,impact,urgency,priority,assignment_group,assigned_to,knowledge
INC1,New,true,0,0,0,true,Caller 7,Opened by 1,1/3/2016 09:00,?,?,Updated by 1,1/3/2016 09:00,Phone,L,Category 5,S,Y,?,2,2,3,Group 56,?,true
INC1,Active,true,1,0,1,true,Caller 7,Opened by 1,1/3/2016 09:00,?,?,Updated by 2,1/3/2016 09:30,Phone,L,Category 5,S,Y,?,2,2,3,Group 70,Resolver 3,true
INC1,Resolved,true,1,0,2,true,Caller 7,Opened by 1,1/3/2016 09:00,?,?,Updated by 3,13/3/2016 17:05,Phone,L,Category 5,S,Y,?,2,2,3,Group 70,Resolver 3,true
INC2,New,true,0,0,0,true,?,Opened by 1,2/3/2016 10:00,?,?,Updated by 1,2/3/2016 10:00,Self service,L,?,S,Y,?,2,2,3,?,?,false
"""


def test_a_servicenow_export_maps_each_update_to_a_touch(tmp_path: Path) -> None:
    export = tmp_path / "incidents.csv"
    export.write_text(SMALL_EXPORT)
    events, out = imported(tmp_path, "servicenow", str(export), "--timezone", "Europe/Berlin")
    first, second, fourth, third = events  # in time order: INC2's touch comes before INC1 is resolved
    assert first["occurred_at"] == "2016-03-01T09:00:00+01:00" and third["occurred_at"] == "2016-03-13T17:05:00+01:00"
    assert (first["customer_id"], first["case_id"], first["department"], first["employee_id"], first["channel"]) == (
        "Caller 7", "INC1", "group-56", None, "phone"
    )
    # The incident passes from group 56 (nobody) to Resolver 3 in group 70: a transfer, then resolved.
    assert (first["outcome"], first["transferred_to_department"], first["transferred_to_employee"]) == (
        "transferred", "group-70", "Resolver 3"
    )
    assert (second["outcome"], third["outcome"], third["topic"]) == ("pending", "resolved", "category-5")
    assert first["attributes"]["assigned_to"] is None and first["attributes"]["sys_updated_by"] == "Updated by 1"
    # No caller: the incident is its own customer; no group: unassigned; self service is the portal.
    assert (fourth["customer_id"], fourth["department"], fourth["channel"], fourth["event_id"]) == (
        "incident-INC2", "unassigned", "portal", "INC2:0:0"
    )
    db, summary = run_replay(tmp_path, [out])
    assert summary.rejected == Counter()
    assert rows(db, "SELECT kind, cross_department, reexplained FROM handoffs") == [("transfer", True, True)]


SMALL_XES = b"""<?xml version="1.0" encoding="UTF-8" ?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <global scope="event"><string key="org:group" value="UNKNOWN"/></global>
  <trace>
    <string key="concept:name" value="T1"/><string key="customer" value="Acme"/>
    <event><string key="concept:name" value="Accepted"/><string key="org:group" value="V5 3rd"/>
      <string key="org:resource" value="Ana"/><date key="time:timestamp" value="2012-05-02T10:00:00+02:00"/>
      <int key="impact" value="3"/></event>
    <event><string key="concept:name" value="Completed"/><string key="lifecycle:transition" value="Resolved"/>
      <string key="org:group" value="G97"/><string key="org:resource" value="Bo"/>
      <date key="time:timestamp" value="2012-05-02T11:30:00.000+02:00"/></event>
  </trace>
  <trace>
    <string key="concept:name" value="T2"/>
    <event><string key="concept:name" value="Accepted"/><string key="org:group" value="G97"/>
      <date key="time:timestamp" value="2012-05-01T08:00:00+00:00"/></event>
  </trace>
</log>
"""


def test_an_xes_log_maps_each_event_to_a_touch(tmp_path: Path) -> None:
    log = tmp_path / "log.xes.gz"
    log.write_bytes(gzip.compress(SMALL_XES))
    events, out = imported(tmp_path, "xes", str(log))
    lone, accepted, completed = events  # in time order
    assert (lone["customer_id"], lone["department"], lone["employee_id"], lone["outcome"]) == (
        "case-T2", "g97", None, "pending"
    )
    assert (accepted["customer_id"], accepted["case_id"], accepted["department"], accepted["employee_id"]) == (
        "Acme", "T1", "v5-3rd", "Ana"
    )
    assert (accepted["outcome"], accepted["transferred_to_department"], completed["outcome"]) == (
        "transferred", "g97", "resolved"
    )
    assert accepted["attributes"] == {
        "concept:name": "Accepted", "org:group": "V5 3rd", "org:resource": "Ana",
        "time:timestamp": "2012-05-02T10:00:00+02:00", "impact": 3,
    }
    db, summary = run_replay(tmp_path, [out])
    assert summary.rejected == Counter()
    assert rows(db, "SELECT customer_id, count(*) FROM handoffs GROUP BY ALL") == [("Acme", 1)]


def test_a_file_that_is_not_a_log_is_refused_naming_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "other.csv"
    export.write_text("a,b\n1,2\n")
    assert main(["import", "servicenow", str(export), "--out", str(tmp_path / "x.jsonl")]) != 0
    assert "not a ServiceNow incident audit export: no column number" in capsys.readouterr().err
    log = tmp_path / "broken.xes"
    log.write_bytes(SMALL_XES[:300])
    assert main(["import", "xes", str(log), "--out", str(tmp_path / "y.jsonl")]) != 0
    assert "is not a readable XES log" in capsys.readouterr().err


def test_the_servicenow_log_replays_whole_and_its_reassignments_are_the_silo_handoffs(tmp_path: Path) -> None:
    """The UCI 498 log: every row a touch, none rejected; per incident, the silo handoffs equal ServiceNow's own
    final ``reassignment_count`` (it rises when the assignment group changes) for 99.6 % of incidents, the
    share whose rows are all in the export."""
    events, out = imported(tmp_path, "servicenow", str(real(SERVICENOW)))
    assert len(events) == 141_712 and len({e["case_id"] for e in events}) == 24_918
    db, summary = run_replay(tmp_path, [out])
    assert summary.rejected == Counter() and summary.accepted == 141_712
    silo = dict(rows(db, """
        SELECT t.case_id, count(h.to_event_id) FILTER (WHERE h.cross_department)
        FROM (SELECT DISTINCT case_id, journey_id FROM touchpoints) t LEFT JOIN handoffs h USING (journey_id)
        GROUP BY ALL
    """))
    final: dict[str, tuple[int, int]] = {}
    with zipfile.ZipFile(SERVICENOW) as archive, archive.open("incident_event_log.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, "utf-8")):
            version = int(row["sys_mod_count"])
            if row["number"] not in final or version >= final[row["number"]][0]:
                final[row["number"]] = (version, int(row["reassignment_count"]))
    agree = sum(silo.get(number) == count for number, (_, count) in final.items())
    assert agree / len(final) >= 0.996


def _handovers(log: Path, group: str, resource: str, customer: str) -> tuple[int, int]:
    """Events, and handovers of work as process mining counts them: consecutive events of a case (in time
    order) with another resource or group; from a plain parse of the whole file.  A case whose events name
    two customers is two journeys (SPEC §4 groups one customer's touches), so it is split by customer."""
    with gzip.open(log) as source:
        tree = ElementTree.parse(source)
    ns = "{http://www.xes-standard.org/}"
    events = handovers = 0
    for trace in tree.getroot().iter(f"{ns}trace"):
        owner = next((c.get("value") for c in trace if c.get("key") == customer), None)
        journeys: dict[str | None, list[tuple[datetime, str | None, str | None]]] = {}
        for event in trace.iter(f"{ns}event"):
            values = {child.get("key"): child.get("value") for child in event}
            journeys.setdefault(values.get(customer, owner), []).append(
                (datetime.fromisoformat(str(values["time:timestamp"])), values.get(group), values.get(resource))
            )
        for steps in journeys.values():
            steps.sort(key=lambda step: step[0])
            events += len(steps)
            handovers += sum(a[1:] != b[1:] for a, b in pairwise(steps))
    return events, handovers


def test_the_bpic_2013_log_replays_whole_and_its_handoffs_are_the_handovers_of_work(tmp_path: Path) -> None:
    events, out = imported(tmp_path, "xes", str(real(BPIC_2013)), "--customer-attr", "product")
    assert len(events) == 65_533 and len({e["case_id"] for e in events}) == 7_554
    db, summary = run_replay(tmp_path, [out])
    assert summary.rejected == Counter()
    assert (65_533, rows(db, "SELECT count(*) FROM handoffs")[0][0]) == _handovers(
        BPIC_2013, "org:group", "org:resource", "product"
    )


def test_the_italian_help_desk_log_replays_whole_with_its_customers(tmp_path: Path) -> None:
    events, out = imported(tmp_path, "xes", str(real(HELPDESK)), "--department-attr", "workgroup")
    assert len(events) == 21_348 and len({e["case_id"] for e in events}) == 4_580
    assert len({e["customer_id"] for e in events}) == 397
    db, summary = run_replay(tmp_path, [out])
    assert summary.rejected == Counter()
    assert (21_348, rows(db, "SELECT count(*) FROM handoffs")[0][0]) == _handovers(
        HELPDESK, "workgroup", "org:resource", "customer"
    )
