"""The operator dashboard (/node) in Chromium: a visitor without the node's admin token is
refused (the page, its data and a wrong token), the operator sees a payment made a moment
ago in the chart and the totals, live over Socket.IO, under the Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Browser, Page, expect

from tests.api.pay_over_http import main as pay_over_http
from tests.e2e.conftest import watch_policy
from tests.fullstack import FullStack

RESOLVED_IN_CHART = """() => Chart.getChart("payments-chart").data.datasets[0].data
  .reduce((sum, n) => sum + n, 0)"""


def test_the_dashboard_refuses_visitors_and_shows_a_payment_made_a_moment_ago(
        browser: Browser, stack: FullStack, screenshot: Callable[[Page, str], None]) -> None:
    context = browser.new_context(base_url=stack.web_url)
    violations: list[str] = []
    watch_policy(context, violations)
    try:
        page = context.new_page()
        response = page.goto("/node")
        assert response is not None and response.status == 401
        expect(page.get_by_role("heading", name="Admin token required")).to_be_visible()
        assert page.locator("#node-dashboard").count() == 0
        assert stack.node is not None and "Node 0x" not in page.content()
        assert page.request.get("/node/data.json").status == 401
        page.get_by_label("Admin token").fill("not-the-token")
        with page.expect_response("**/node/login") as refused:
            page.get_by_role("button", name="Open the dashboard").click()
        assert refused.value.status == 401
        expect(page.get_by_role("alert")).to_have_text("That is not the node's admin token.")
        assert page.locator("#node-dashboard").count() == 0

        page.get_by_label("Admin token").fill(stack.admin_token)
        page.get_by_role("button", name="Open the dashboard").click()
        dashboard = page.locator("#node-dashboard")
        expect(dashboard).to_have_attribute("data-live", "on")  # the socket is up
        page.wait_for_function("() => Number(document.getElementById('node-dashboard')"
                               ".dataset.rendered) >= 1")  # charts drawn
        resolved = int(page.get_by_test_id("total-resolved").inner_text())
        in_chart = page.evaluate(RESOLVED_IN_CHART)

        payment = pay_over_http(stack.web_url)
        assert payment["payment"]["status"] == "completed"
        # pushed over the socket, no reload: the totals and the chart count it
        expect(page.get_by_test_id("total-resolved")).to_have_text(str(resolved + 1),
                                                                   timeout=15_000)
        page.wait_for_function(f"() => ({RESOLVED_IN_CHART})() > {in_chart}", timeout=15_000)
        expect(page.get_by_test_id("total-volume")).to_contain_text("ETH in")
        expect(page.get_by_test_id("collateral")).to_contain_text("deposit")
        assert page.evaluate(
            """() => Chart.getChart("volume-chart").data.datasets
                 .flatMap((d) => d.data).some((v) => v > 0)""")
        screenshot(page, "operator-dashboard")
        assert violations == []
    finally:
        context.close()
