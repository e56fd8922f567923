"""The Dask tab in a real browser: dask-labextension's sidebar, set up for the lens Dask
Gateway, against the real stack (hub, gateway, lens service and its dashboard hop).

A cluster made in a notebook kernel with the no-config ``Gateway()`` shows up in the
sidebar with its $/h and cost so far; it is scaled and shut down from the sidebar; its
dashboard plots load through the user's server and the owner-only hop; a second user
sees none of it. Screenshots go to artifacts/browser/lab-dask-*.png.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.browser.test_lab_extension import AXE, new_user, open_lab, remove_user
from tests.support.kernel import RemoteKernel

pytestmark = pytest.mark.browser
DEADLINE_S = 120


def user_token(stack, name: str) -> str:
    return stack.api("POST", f"/users/{name}/tokens", json={"expires_in": 900}).json()["token"]


def server_get(stack, name: str, token: str, rel: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"{stack.url}/user/{name}/{rel}", headers={"Authorization": f"token {token}"},
                            timeout=60, allow_redirects=False, **kwargs)


def poll(condition, what: str, deadline_s: float = DEADLINE_S, every: float = 1.0):
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline_s} s: {what}")
        time.sleep(every)  # polling interval between checks of the condition, under a deadline


def open_dask_tab(page):
    sidebar = page.locator("#dask-dashboard-launcher")
    if not sidebar.is_visible():  # its tab toggles: a click on an open one closes it
        page.locator('.jp-SideBar [data-id="dask-dashboard-launcher"]').click()
    sidebar.wait_for(state="visible")


def item_for(page, short: str):
    return page.locator(".dask-ClusterListingItem", has=page.locator(".dask-ClusterListingItem-title", has_text=short))


@pytest.fixture(scope="module")
def owner(stack):
    name, password = new_user(stack)
    yield name, password
    remove_user(stack, name)


@pytest.fixture(scope="module")
def lab(browser, stack, owner, artifacts):
    context, page = open_lab(browser, stack, *owner, artifacts)
    yield page
    context.close()


@pytest.fixture(scope="module")
def notebook_cluster(stack, owner, lab):
    """A cluster made in a kernel of the owner's server, the way a notebook makes one."""
    name, _ = owner
    token = user_token(stack, name)

    def in_a_kernel():
        with RemoteKernel(stack.url, name, token) as kernel:
            return kernel.run("from dask_gateway import Gateway\n"
                              "cluster = Gateway().new_cluster(shutdown_on_close=False)\n"
                              "cluster.scale(1)\nprint(cluster.name)")

    # its own thread: RemoteKernel runs an event loop, Playwright's has this one
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(in_a_kernel).result(timeout=300)
    assert out.error is None, out.error
    cluster = out.stdout.strip().splitlines()[-1]
    yield cluster, token
    for model in server_get(stack, name, token, "dask/clusters").json():  # a test failed before shutting it
        server_get(stack, name, token, f"dask/clusters/{model['id']}", "DELETE")


def test_a_notebook_cluster_is_listed_with_its_cost(lab, stack, owner, notebook_cluster, artifacts):
    name, _ = owner
    cluster, token = notebook_cluster
    # lens's Costs tab lists it with its rate, and opens the Dask sidebar
    lab.locator("button.jp-lens-status").click()
    lab.locator("#jp-lens-costs .jp-lens-running").get_by_text(f"Dask cluster {cluster}").wait_for(
        timeout=DEADLINE_S * 1000)
    lab.locator("#jp-lens-costs button.jp-lens-open-dask").click()
    lab.locator("#dask-dashboard-launcher").wait_for(state="visible")
    item = item_for(lab, cluster[:8])
    item.wait_for(state="visible", timeout=DEADLINE_S * 1000)
    # its worker joins; the title carries the gateway's rate and cost so far
    lab.wait_for_function(
        "(short) => [...document.querySelectorAll('.dask-ClusterListingItem')].some(e =>"
        " e.textContent.includes(short) && /Workers:\\s*1/.test(e.textContent))",
        arg=cluster[:8], timeout=DEADLINE_S * 1000)
    costs = server_get(stack, name, token, "lens/api/dask").json()["clusters"]
    mine = next(c for c in costs if c["name"] == cluster)
    assert mine["workers"] == 1 and mine["usd_per_hour"] > 0, mine
    title = item.locator(".dask-ClusterListingItem-title").inner_text()
    assert re.search(rf"{cluster[:8]} · \$[0-9.]+/h · \$[0-9.]+ so far", title), title
    rate = float(re.search(r"\$([0-9.]+)/h", title).group(1))
    assert abs(rate - mine["usd_per_hour"]) < 0.001, (title, mine)
    # the same list over the server's API: dask-labextension's model
    listed = server_get(stack, name, token, "dask/clusters").json()
    assert [m["gateway_name"] for m in listed] == [cluster], listed
    assert listed[0]["dashboard_link"].endswith(f"/services/dask-gateway/clusters/{cluster}/status")
    artifacts(lab, "lab-dask-01-listed")


def test_its_dashboard_plots_load_through_the_hop(lab, stack, owner, notebook_cluster, artifacts):
    name, _ = owner
    cluster, token = notebook_cluster
    model = server_get(stack, name, token, "dask/clusters").json()[0]
    r = server_get(stack, name, token, f"dask/dashboard/{model['id']}/individual-plots.json")
    assert r.status_code == 200, r.text[:300]
    assert "Individual Task Stream" in r.json(), r.text[:300]
    # in the sidebar: selecting the cluster points the launcher at it, the plots enable
    item_for(lab, cluster[:8]).click()
    button = lab.locator(".dask-DashboardListing-item button", has_text="Task Stream").first
    button.wait_for(state="visible", timeout=DEADLINE_S * 1000)
    lab.wait_for_function(
        "() => [...document.querySelectorAll('.dask-DashboardListing-item button')].some(b => !b.disabled)",
        timeout=DEADLINE_S * 1000)
    button.click()
    frame = lab.frame_locator("iframe[src*='individual-task-stream']").first
    frame.locator(".bk-Canvas, .bk-root, div[class*='bk']").first.wait_for(state="attached", timeout=DEADLINE_S * 1000)
    artifacts(lab, "lab-dask-02-dashboard")


def axe_serious(page, selector: str) -> list[dict]:
    result = page.evaluate("""async (selector) => {
        const r = await axe.run(document.querySelector(selector));
        return r.violations.map(v => ({id: v.id, impact: v.impact,
            where: v.nodes.map(n => [n.target.join(' '), n.html.slice(0, 200), n.failureSummary])}));
    }""", selector)
    return [v for v in result if v["impact"] in ("serious", "critical")]


def jupyterlab_toolbar_button(violation: dict) -> bool:
    """JupyterLab's own ToolbarButtonComponent: a <jp-button> host with aria-pressed."""
    return violation["id"] == "aria-allowed-attr" and all(
        html.startswith("<jp-button") and "aria-pressed" in why for _, html, why in violation["where"])


def test_the_dask_tab_passes_axe(lab, artifacts):
    assert AXE.is_file(), "make labextension installs axe-core (labextension/node_modules)"
    open_dask_tab(lab)
    lab.add_script_tag(path=str(AXE))
    serious = axe_serious(lab, "#dask-dashboard-launcher")
    core = [v for v in serious if jupyterlab_toolbar_button(v)]
    assert [v for v in serious if v not in core] == [], json.dumps(serious)
    if core:  # the toolbar's refresh button: JupyterLab's component, the same in its file browser
        lab.locator('.jp-SideBar [data-id="filebrowser"]').click()
        lab.locator("#filebrowser").wait_for(state="visible")
        in_file_browser = axe_serious(lab, "#filebrowser")
        assert any(jupyterlab_toolbar_button(v) for v in in_file_browser), json.dumps(in_file_browser)
        open_dask_tab(lab)


def test_a_second_user_sees_none_of_the_first_users_clusters(browser, stack, owner, notebook_cluster, artifacts):
    first, _ = owner
    cluster, owner_token = notebook_cluster
    theirs = server_get(stack, first, owner_token, "dask/clusters").json()
    assert [m["gateway_name"] for m in theirs] == [cluster]
    name, password = new_user(stack)
    try:
        context, page = open_lab(browser, stack, name, password, artifacts)
        try:
            open_dask_tab(page)
            token = user_token(stack, name)
            assert server_get(stack, name, token, "dask/clusters").json() == []
            # the sidebar's own list, freshly asked for: empty
            page.locator(".dask-DaskClusterManager").wait_for(state="visible")
            with page.expect_response(lambda r: "/dask/clusters" in r.url and r.status == 200):
                page.locator('.dask-DaskClusterManager [title="Refresh Cluster List"]').click()
            assert page.locator(".dask-ClusterListingItem").count() == 0
            artifacts(page, "lab-dask-03-second-user")
            cid = theirs[0]["id"]
            for method, rel, body in [("GET", f"dask/clusters/{cid}", None),
                                      ("PATCH", f"dask/clusters/{cid}", {"workers": 0}),
                                      ("DELETE", f"dask/clusters/{cid}", None),
                                      ("GET", f"dask/dashboard/{cid}/individual-plots.json", None)]:
                r = server_get(stack, name, token, rel, method, json=body)
                assert r.status_code == 404, (method, rel, r.status_code, r.text[:200])
            # and not through the first user's server either
            r = server_get(stack, first, token, "dask/clusters")
            assert r.status_code in (302, 403), r.status_code
        finally:
            context.close()
    finally:
        remove_user(stack, name)
    assert server_get(stack, first, owner_token, "lens/api/dask").json()["clusters"][0]["name"] == cluster


def test_bad_scale_requests_are_400_and_odd_ids_404_as_json(stack, owner, notebook_cluster):
    """Through the real server and gateway: what the sidebar never sends is refused, never a 500."""
    name, _ = owner
    cluster, token = notebook_cluster
    (model,) = [m for m in server_get(stack, name, token, "dask/clusters").json() if m["gateway_name"] == cluster]
    rel = f"dask/clusters/{model['id']}"
    for body in (b'{"workers": Infinity}', b'{"workers": -1}', b'{"workers": "2"}', b'{"workers": 2.5}',
                 b'{"workers": 1000000}', b'{"adapt": {"minimum": 3, "maximum": 1}}', b"[1]", b"[" * 50_000):
        r = server_get(stack, name, token, rel, "PATCH", data=body)
        assert r.status_code == 400 and r.json()["message"], (body[:40], r.status_code, r.text[:200])
    for odd in ("not-a-uuid", "..%2F..%2Fhub", "x" * 300):
        r = server_get(stack, name, token, f"dask/clusters/{odd}")
        assert r.status_code == 404 and "not found" in r.json()["message"], (odd, r.status_code, r.text[:200])


def test_scale_then_shut_down_from_the_sidebar(lab, stack, owner, notebook_cluster, artifacts):
    name, _ = owner
    cluster, token = notebook_cluster
    open_dask_tab(lab)
    item = item_for(lab, cluster[:8])
    item.locator(".dask-ClusterListingItem-scale").click()
    dialog = lab.locator(".jp-Dialog")
    dialog.locator("input.dask-ScalingInput").first.fill("2")
    artifacts(lab, "lab-dask-04-scale")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()

    def two_workers():
        return [c for c in server_get(stack, name, token, "lens/api/dask").json()["clusters"]
                if c["name"] == cluster and c["workers"] == 2]

    scaled = poll(two_workers, "the gateway runs 2 workers")[0]
    lab.wait_for_function(
        "(short) => [...document.querySelectorAll('.dask-ClusterListingItem')].some(e =>"
        " e.textContent.includes(short) && /Workers:\\s*2/.test(e.textContent))",
        arg=cluster[:8], timeout=DEADLINE_S * 1000)
    assert scaled["usd_per_hour"] > 0
    artifacts(lab, "lab-dask-05-scaled")
    item.locator(".dask-ClusterListingItem-stop").click()
    poll(lambda: not server_get(stack, name, token, "lens/api/dask").json()["clusters"],
         "the cluster is stopped at the gateway")
    item.wait_for(state="detached", timeout=DEADLINE_S * 1000)
    artifacts(lab, "lab-dask-06-shut-down")
