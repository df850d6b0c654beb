"""The pure scheduler on a fake clock: order, many timers, alarms in a zone, daylight
saving, what rings after a restart and what was missed."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pivox.core import schedule as sc

NY = ZoneInfo("America/New_York")  # 2026: forward 8 March 02:00, back 1 November 02:00
LONDON = ZoneInfo("Europe/London")


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=zone, fold=fold).timestamp()  # type: ignore[misc]


def local(t: float, zone: ZoneInfo = NY) -> str:
    return datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M %Z")


def run_clock(s: sc.Schedule, start: float, end: float, zone: ZoneInfo
              ) -> list[tuple[str, str, float]]:
    """Wake only when the schedule says (as the daemon does), ringing what is due."""
    rang = []
    now = start
    while True:
        nxt = sc.next_due(s, zone)
        if nxt is None or nxt > end:
            return rang
        now = max(now, nxt)
        s, fired = sc.due(s, now, zone)
        assert fired, "woken for nothing"
        rang += [(f.kind, f.label, now) for f in fired]


def test_timers_ring_in_order_of_their_due_times_not_of_setting() -> None:
    s = sc.Schedule()
    s, _ = sc.add_timer(s, 300, "pasta", 1000.0)
    s, _ = sc.add_timer(s, 60, "tea", 1010.0)
    s, _ = sc.add_timer(s, 120, "", 1020.0)
    rang = run_clock(s, 1000.0, 5000.0, NY)
    assert [(label, t) for _, label, t in rang] == [
        ("tea", 1070.0), ("timer", 1140.0), ("pasta", 1300.0)]


def test_many_timers_at_once_each_ring_once_on_time() -> None:
    s = sc.Schedule()
    for i in range(30):
        s, _ = sc.add_timer(s, 10 + (i * 7) % 23, f"t{i}", 0.0)
    rang = run_clock(s, 0.0, 100.0, NY)
    assert sorted(label for _, label, _ in rang) == sorted(f"t{i}" for i in range(30))
    for _, label, t in rang:
        i = int(label[1:])
        assert t == 10 + (i * 7) % 23
    assert [t for *_, t in rang] == sorted(t for *_, t in rang)
    with pytest.raises(sc.ScheduleError):
        for i in range(3):
            s, _ = sc.add_timer(s, 5, f"more{i}", 0.0)


def test_same_due_time_rings_together_and_labels_are_kept_apart() -> None:
    s = sc.Schedule()
    s, _ = sc.add_timer(s, 60, "", 0.0)
    s, second = sc.add_timer(s, 60, "", 0.0)
    assert second.label == "timer 2"
    s, _ = sc.add_timer(s, 90, "eggs", 0.0)
    s, _ = sc.add_timer(s, 30, "eggs", 5.0)  # the same label: changed, not doubled
    assert [t.label for t in s.timers].count("eggs") == 1
    s, fired = sc.due(s, 60.0, NY)
    assert [f.label for f in fired] == ["eggs", "timer", "timer 2"]
    assert s.timers == ()


def test_cancel_by_label_or_all() -> None:
    s = sc.Schedule()
    for name in ("pasta", "tea", "eggs"):
        s, _ = sc.add_timer(s, 60, name, 0.0)
    s, gone = sc.cancel(s, "timer", "Tea")
    assert gone == ("tea",) and [t.label for t in s.timers] == ["pasta", "eggs"]
    s, gone = sc.cancel(s, "timer", "nothing")
    assert gone == ()
    s, gone = sc.cancel(s, "timer", "all")
    assert s.timers == ()


@pytest.mark.parametrize("bad", [0, -5, "soon", None, 10**9])
def test_a_timer_of_no_sensible_length_is_refused(bad: object) -> None:
    with pytest.raises(sc.ScheduleError):
        sc.add_timer(sc.Schedule(), bad, "x", 0.0)  # type: ignore[arg-type]


def test_alarm_once_rings_once_daily_every_day() -> None:
    start = at(LONDON, 2026, 6, 1, 12, 0)  # a Monday
    s = sc.Schedule()
    s, _ = sc.add_alarm(s, "7:00", "wake up", "daily", start)
    s, _ = sc.add_alarm(s, "06:30", "train", "once", start)
    s, _ = sc.add_alarm(s, "08:15", "gym", "mon,wed", start)
    rang = run_clock(s, start, start + 7 * 86400, LONDON)
    said = [(label, local(t, LONDON)) for _, label, t in rang]
    assert said[:4] == [("train", "2026-06-02 06:30 BST"), ("wake up", "2026-06-02 07:00 BST"),
                        ("wake up", "2026-06-03 07:00 BST"), ("gym", "2026-06-03 08:15 BST")]
    assert sum(1 for label, _ in said if label == "wake up") == 7
    assert sum(1 for label, _ in said if label == "train") == 1
    assert [w for label, w in said if label == "gym"] == ["2026-06-03 08:15 BST",
                                                          "2026-06-08 08:15 BST"]


def test_weekdays_skip_the_weekend() -> None:
    friday = at(NY, 2026, 6, 5, 9, 0)
    s, _ = sc.add_alarm(sc.Schedule(), "07:00", "work", "weekdays", friday)
    rang = run_clock(s, friday, friday + 4 * 86400, NY)
    assert [local(t) for *_, t in rang] == ["2026-06-08 07:00 EDT", "2026-06-09 07:00 EDT"]


def test_an_alarm_at_a_time_the_clocks_skip_rings_once_after_the_change() -> None:
    """02:30 does not exist in New York on 8 March 2026 (02:00 -> 03:00)."""
    start = at(NY, 2026, 3, 7, 12, 0)
    s, _ = sc.add_alarm(sc.Schedule(), "02:30", "night", "daily", start)
    rang = run_clock(s, start, start + 3 * 86400, NY)
    assert [local(t) for *_, t in rang] == [
        "2026-03-08 03:30 EDT",  # the clocks' 03:30, one hour of real time after 01:30 EST
        "2026-03-09 02:30 EDT", "2026-03-10 02:30 EDT"]
    assert rang[0][2] - at(NY, 2026, 3, 8, 1, 30) == 3600


def test_an_alarm_at_a_time_the_clocks_pass_twice_rings_once() -> None:
    """01:30 happens twice in New York on 1 November 2026 (02:00 EDT -> 01:00 EST)."""
    start = at(NY, 2026, 10, 31, 12, 0)
    s, _ = sc.add_alarm(sc.Schedule(), "01:30", "late", "daily", start)
    rang = run_clock(s, start, start + 3 * 86400, NY)
    assert [local(t) for *_, t in rang] == [
        "2026-11-01 01:30 EDT", "2026-11-02 01:30 EST", "2026-11-03 01:30 EST"]
    once, _ = sc.add_alarm(sc.Schedule(), "01:30", "once", "once", start)
    assert len(run_clock(once, start, start + 3 * 86400, NY)) == 1


def test_a_daily_alarm_keeps_its_wall_time_across_both_changes() -> None:
    start = at(LONDON, 2026, 3, 27, 12, 0)
    s, _ = sc.add_alarm(sc.Schedule(), "07:00", "up", "daily", start)
    rang = run_clock(s, start, at(LONDON, 2026, 11, 1, 12, 0), LONDON)
    assert {datetime.fromtimestamp(t, LONDON).strftime("%H:%M") for *_, t in rang} == {"07:00"}
    assert len(rang) == 219  # 28 March to 1 November, one a day
    gaps = {rang[i + 1][2] - rang[i][2] for i in range(len(rang) - 1)}
    assert gaps == {86400, 82800, 90000}  # 23 h into summer time, 25 h out of it


def test_at_start_a_little_late_rings_and_long_late_is_missed() -> None:
    s = sc.Schedule()
    s, _ = sc.add_timer(s, 60, "tea", 0.0)  # due 60
    s, _ = sc.add_timer(s, 30, "eggs", 0.0)  # due 30
    s, _ = sc.add_timer(s, 3600, "roast", 0.0)  # still to come
    boot = 30 + sc.MISSED_GRACE_S + 1  # eggs 601 s late, tea 571 s late
    s, ring, missed = sc.at_start(s, boot, NY)
    assert [f.label for f in ring] == ["tea"]
    assert [f.label for f in missed] == ["eggs"] and missed[0].late_s == pytest.approx(601)
    assert [t.label for t in s.timers] == ["roast"]


def test_a_repeating_alarm_missed_while_off_moves_on_without_ringing_twice() -> None:
    start = at(NY, 2026, 6, 1, 12, 0)
    s, _ = sc.add_alarm(sc.Schedule(), "07:00", "up", "daily", start)
    boot = at(NY, 2026, 6, 4, 9, 0)  # off for three mornings
    s, ring, missed = sc.at_start(s, boot, NY)
    assert ring == [] and len(missed) == 1  # one line, not three
    assert local(sc.next_due(s, NY) or 0) == "2026-06-05 07:00 EDT"


@pytest.mark.parametrize("text,want", [("7:05", (7, 5)), ("07:05:00", (7, 5)),
                                       ("23.59", (23, 59)), ("0h00", (0, 0))])
def test_time_forms(text: str, want: tuple[int, int]) -> None:
    assert sc.parse_time(text) == want


@pytest.mark.parametrize("bad", ["24:00", "7", "7:60", "seven", ""])
def test_bad_times_and_repeats_are_refused(bad: str) -> None:
    with pytest.raises(sc.ScheduleError):
        sc.parse_time(bad)
    with pytest.raises(sc.ScheduleError):
        sc.repeat_days("fortnightly")


def test_spoken_length_and_listing() -> None:
    assert sc.spoken_length(3 * 60) == "3 minutes"
    assert sc.spoken_length(3661) == "1 hour 1 minute 1 second"
    s, _ = sc.add_timer(sc.Schedule(), 180, "pasta", 0.0)
    s, _ = sc.add_alarm(s, "07:00", "up", "weekdays", 0.0)
    out = sc.listing(s, 60.0, NY)
    assert out["timers"][0]["remaining_s"] == 120
    assert out["alarms"][0]["repeat"] == "weekdays"
