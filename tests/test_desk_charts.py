"""Screens for staff at a desk (issue #17 pt 9): the back office uses a desktop's width while
the customers' pages keep their column; the dashboard's and the console's charts are inline
SVG drawn from the figures (scales, points), each with a table of the same figures for screen
readers, "Sin datos" for an empty series, and nothing the CSP refuses."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from babel.dates import format_date
from flask import render_template_string
from sqlalchemy import select, update

from tests.flows import stamp
from webapp import charts
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.extensions import db
from webapp.models import Invoice, Issuer
from webapp.models.platform import StampMovement
from webapp.platform import figures


def P(values):
    return [charts.Point(i, v) for i, v in enumerate(values)]


# --- The geometry --------------------------------------------------------------------------


def test_scale_is_round_and_covers_the_values():
    assert charts.scale([0, 3, 7]) == (0, 8, 2)
    assert charts.scale([1, 2, 3, 4]) == (0, 4, 1)
    assert charts.scale([0, 0]) == (0, 1, 1)  # nothing yet: a unit scale, not a division by 0
    assert charts.scale([-3, 10]) == (-5, 10, 5)
    assert charts.scale([9500]) == (0, 10000, 5000)
    assert charts.scale([Decimal("12.5")]) == (0, 15, 5)
    # Whole numbers get whole steps; amounts may get fractions.
    assert charts.scale([1]) == (0, 1, 1)
    assert charts.scale([Decimal("0.3")]) == (0, Decimal("0.3"), Decimal("0.1"))


def test_bars_for_known_data():
    chart = charts.bars(P([1, 2, 3, 4]))
    # Plot area x 48..592, y 180 (value 0) .. 24 (value 4): 39 units per stamp.
    assert [(t.value, t.y) for t in chart.ticks] == [(0, 180), (1, 141), (2, 102), (3, 63), (4, 24)]
    assert chart.zero == 180
    slot = (592 - 48) / 4  # 136
    first, last = chart.bars[0], chart.bars[-1]
    assert (first.x, first.y, first.width, first.height) == (68.4, 141, 95.2, 39)
    assert (last.x, last.y, last.height) == (round(48 + 3 * slot + 20.4, 1), 24, 156)
    assert [label.x for label in chart.labels] == [116, 252, 388, 524]


def test_line_through_the_slots_centres_and_labels_thinned():
    chart = charts.line(P([10, 5, 0]))
    assert chart.line == "138.7,24 320,102 501.3,180"
    assert not chart.bars
    thirty = charts.bars(P([0] * 29 + [3]))
    assert len(thirty.labels) == 6  # one day in five labelled
    assert [label.point.key for label in thirty.labels] == [0, 5, 10, 15, 20, 25]
    assert [b.point.key for b in thirty.bars if b.height] == [29]


def test_negative_values_hang_below_the_axis():
    chart = charts.bars(P([-3, 10]))
    low, high = chart.bars
    assert chart.zero == 180 - (5 / 15) * 156  # 0 is a third of the way up from −5
    assert low.y == round(chart.zero, 1) and low.height > 0
    assert high.y == 24


def test_gauge_and_empty_series():
    gauge = charts.gauge(10, 365, 30)
    # Scale 0..400 (steps of 100) over x 8..584: 1.44 units a day.
    assert [t.value for t in gauge.ticks] == [0, 100, 200, 300, 400]
    assert gauge.bar == 14.4 and gauge.mark == 51.2
    assert charts.gauge(-5, 365, 30).bar == 0  # expired: no bar
    assert charts.bars([]).empty and charts.line([]).empty


# --- The figures ---------------------------------------------------------------------------


def _sr_table(html: str, caption: str) -> list[tuple[str, str]]:
    """The rows (header, value) of the screen readers' table captioned `caption`."""
    found = re.search(
        rf'<div class="sr-only"><table>\s*<caption>{re.escape(caption)}</caption>(.*?)</table>',
        html,
        re.S,
    )
    assert found, caption
    body = found.group(1)
    assert re.findall(r'<th scope="col">', body), "column headers"
    return re.findall(r'<tr><th scope="row">(.*?)</th><td>(.*?)</td></tr>', body)


def _figure(html: str, ident: str) -> str:
    found = re.search(
        rf'<figure class="chart" aria-labelledby="{ident}">(.*?)</figure>', html, re.S
    )
    assert found, ident
    return found.group(1)


def local_day(moment: datetime):
    return moment.astimezone(MEXICO_CITY).date()


def test_dashboard_charts_stamps_credits_and_licence(app, client, demo, staff, admin_login):
    stamp(client, demo["fresh"][0])
    stamp(client, demo["fresh"][1])
    now = datetime.now(UTC)
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        first = db.session.scalar(select(Invoice.id).where(Invoice.uuid.is_not(None)).limit(1))
        three_days_ago = now - timedelta(days=3)
        db.session.execute(
            update(Invoice).where(Invoice.id == first).values(stamped_at=three_days_ago)
        )
        db.session.commit()
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    response = admin.get("/admin/")
    html = response.get_data(as_text=True)
    assert " style=" not in html and "<script>" not in html
    assert "style-src" not in response.headers["Content-Security-Policy"]  # default-src 'self'

    # Stamps per day: 30 rows, the two stamps on their days, the rest 0.
    rows = _sr_table(html, "Timbres por día (últimos 30 días)")
    assert len(rows) == 30
    today = local_day(now)
    assert rows[-1] == (format_date(today, "medium", locale="es_MX"), "1")
    assert rows[-4] == (format_date(local_day(three_days_ago), "medium", locale="es_MX"), "1")
    assert sum(int(v) for _, v in rows) == 2
    svg = _figure(html, "grafica-timbres")
    assert '<svg viewBox="0 0 600 220" aria-hidden="true"' in svg
    assert len(re.findall(r"<rect ", svg)) == 2  # a bar per day with stamps
    assert ">Timbres</text>" in svg and ">Día</text>" in svg  # the axes, in Spanish
    # Unmetered, no licence checked (the demo as tests build it): no credits, no renewal.
    assert "grafica-creditos" not in html and "grafica-licencia" not in html

    # Metered, but nothing in the ledger yet: "Sin datos" rather than a broken chart.
    with app.app_context():
        issuer = db.session.get(Issuer, staff["issuer_id"])
        issuer.stamp_credits = 0
        issuer.licence_expires_at = now + timedelta(days=10)
        db.session.commit()
    html = admin.get("/admin/").get_data(as_text=True)
    assert "Sin datos" in _figure(html, "grafica-creditos")
    licence = _figure(html, "grafica-licencia")
    assert "quedan 10 días" in licence
    assert re.search(r"<td>[^<]+</td><td>10</td>", licence)

    # The ledger: 100 bought five days ago (and 40 the day before the window, carried in),
    # two stamps today. The line is the balance at the end of each day.
    with app.app_context():
        moves = [
            (now - timedelta(days=120), 40, 40, "purchase"),
            (now - timedelta(days=5), 100, 140, "purchase"),
            (now - timedelta(minutes=2), -1, 139, "stamp"),
            (now - timedelta(minutes=1), -1, 138, "stamp"),
        ]
        for at, delta, balance, reason in moves:
            db.session.add(
                StampMovement(
                    issuer_id=staff["issuer_id"],
                    delta=delta,
                    balance=balance,
                    reason=reason,
                    created_at=at,
                )
            )
        db.session.get(Issuer, staff["issuer_id"]).stamp_credits = 138
        db.session.commit()
    html = admin.get("/admin/").get_data(as_text=True)
    rows = _sr_table(html, "Créditos de timbrado (últimos 90 días)")
    assert len(rows) == 90
    values = [int(v) for _, v in rows]
    assert values[:84] == [40] * 84 and values[84:89] == [140] * 5 and values[89] == 138
    polyline = re.search(r'<polyline class="line" points="([^"]+)"', html).group(1)
    ys = [float(pair.split(",")[1]) for pair in polyline.split()]
    # Scale 0..150 (steps of 50) over y 180..24: 40 → 138.4, 140 → 34.4, 138 → 36.5.
    assert ys[0] == 138.4 and ys[86] == 34.4 and ys[-1] == 36.5


def test_branch_staff_see_their_branches_stamps(app, client, demo, staff, admin_login):
    """The bars follow the dashboard's scope: another issuer's admin sees none of ours."""
    stamp(client, demo["fresh"][0])
    other = app.test_client()
    admin_login(other, staff["other_admin"])
    html = other.get("/admin/").get_data(as_text=True)
    rows = _sr_table(html, "Timbres por día (últimos 30 días)")
    assert sum(int(v) for _, v in rows) == 0
    assert "<rect " not in _figure(html, "grafica-timbres")


def test_console_charts_every_issuer(app, client, demo, staff):
    stamp(client, demo["fresh"][0])
    now = datetime.now(UTC)
    with app.app_context():
        db.session.get(Issuer, staff["issuer_id"]).licence_expires_at = now + timedelta(days=10)
        db.session.get(Issuer, staff["other_issuer_id"]).licence_expires_at = now + timedelta(
            days=200
        )  # beyond 13 weeks: not counted
        db.session.commit()
        data = figures.console_charts(db.session, now)
        assert [p.value for p in data.renewals.points] == [0, 1] + [0] * 11
        assert data.renewals.points[1].key == local_day(now) + timedelta(weeks=1)
        assert sum(p.value for p in data.stamps.points) == 1
        with app.test_request_context("/operador/"):
            html = render_template_string(
                '{% include "operator/_charts.html" %}', console_charts=data
            )
    rows = _sr_table(html, "Licencias por renovar (próximas 13 semanas)")
    week = format_date(local_day(now) + timedelta(weeks=1), "medium", locale="es_MX")
    assert rows[1] == (f"Semana del {week}", "1") and len(rows) == 13
    assert len(_sr_table(html, "Timbres por día, todos los emisores (últimos 30 días)")) == 30
    assert " style=" not in html and "<script" not in html


def test_console_charts_with_nothing_say_sin_datos(app):
    with app.app_context():
        data = figures.console_charts(db.session, datetime.now(UTC))
    assert not data.renewals.empty  # thirteen weeks of zeros: an axis from 0 to 1
    with app.test_request_context("/operador/"):
        empty = charts.bars([])
        html = render_template_string(
            '{% from "_charts.html" import chart %}{{ chart(c, "x", "T", "Día", "Timbres") }}',
            c=empty,
        )
    assert "Sin datos" in html and "<svg" not in html and "<table" not in html


# --- The layout in Chromium ----------------------------------------------------------------

CUSTOMER_MAIN_WIDTH = 640  # 40rem: the customers' column, as it was before the desk layout


def _widths(page):
    return page.evaluate(
        """() => {
          const box = e => e && e.getBoundingClientRect();
          const nav = box(document.querySelector('.admin-nav'));
          const link = box(document.querySelector('.admin-nav a'));
          return {main: box(document.querySelector('main')).width,
                  nav: nav && nav.height, link: link && link.height,
                  scroll: document.documentElement.scrollWidth};
        }"""
    )


@pytest.mark.browser
def test_desk_uses_the_width_customers_keep_their_column(
    page, live_server, app, staff, admin_login
):
    admin = app.test_client()
    admin_login(admin, staff["operator"])
    admin.post("/admin/emisores", data={"issuer": str(staff["issuer_id"])})
    page.context.add_cookies(
        [{"name": c.key, "value": c.value, "url": live_server} for c in admin._cookies.values()]
    )
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(live_server + "/admin/")
    assert page.locator("body.desk").count() == 1
    desk = _widths(page)
    assert desk["main"] > 1000
    # The operator's menu (every entry, the issuer acted on, Salir) on one line.
    assert desk["nav"] < 2 * desk["link"] + 16, desk
    assert desk["scroll"] <= 1280
    charts_box = page.locator("figure.chart svg").first.bounding_box()
    assert charts_box["width"] > 400  # side by side, each readable

    page.goto(live_server + "/operador/")  # the console: desk-wide too
    console = _widths(page)
    assert console["main"] > 1000 and console["nav"] < 2 * console["link"] + 16, console

    page.goto(live_server + "/facturar/demo/")
    assert page.locator("body.desk").count() == 0
    assert _widths(page)["main"] == CUSTOMER_MAIN_WIDTH

    # A phone: the menu wraps, nothing overflows the screen.
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(live_server + "/admin/")
    phone = _widths(page)
    assert phone["scroll"] <= 360 and phone["main"] <= 360
    assert page.errors == []


def test_a_line_of_one_point_is_drawn_as_a_dot(app):
    """Credits moved on one day only: the line chart shows that day's balance as a dot."""
    from datetime import date

    from flask import render_template_string

    from webapp import charts

    chart = charts.line([charts.Point(date(2026, 12, 6), 519)])
    with app.test_request_context():
        html = render_template_string(
            '{% from "_charts.html" import chart %}{{ chart(c, "x", "T", "Día", "Créditos") }}',
            c=chart,
        )
    assert "<circle" in html and "519" in html
