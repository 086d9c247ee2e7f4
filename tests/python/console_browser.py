#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""The console in a real browser: Debian's headless Chromium driven over WebDriver by
selenium (PyPI), against a running `sink-service serve`. Every check raises on failure; at the
end it prints what it measured as one JSON object and writes a screenshot of each page.

    console_browser.py --url https://127.0.0.1:PORT --ca CA.pem --cert SERVICE.pem
        --operator KEY --admin KEY --tenant acme --screenshots DIR

The service's certificate is trusted by its SPKI hash only (Chromium's
--ignore-certificate-errors-spki-list), so TLS stays real. Requests the browser makes are
counted from its performance log: none may leave 127.0.0.1.
"""
import argparse
import base64
import hashlib
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HOSTILE = '<img/src=x/onerror=window.__veil_xss=1>'


def spki_hash(cert_pem):
    cert = x509.load_pem_x509_certificate(open(cert_pem, "rb").read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Api:
    """The API as a plain client (urllib), to compare what the page shows."""

    def __init__(self, url, ca):
        self.url = url
        self.ctx = ssl.create_default_context(cafile=ca)

    def call(self, method, path, key, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("authorization", f"Bearer {key}")
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def browser(cert):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps",
                "--metrics-recording-only", "--disable-extensions",
                f"--ignore-certificate-errors-spki-list={spki_hash(cert)}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_page(driver, page, timeout=60):
    """Waits for the console to say `page` finished rendering (its charts included)."""
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "const v = document.getElementById('view');"
            "return document.body.dataset.page === arguments[0] && v && v.dataset.ready === '1';",
            page))


def go(driver, hash_route, page):
    driver.execute_script("document.getElementById('view').dataset.ready = '';"
                          "location.hash = arguments[0];", hash_route)
    began = time.monotonic()
    wait_page(driver, page)
    return (time.monotonic() - began) * 1000


def sign_in(driver, url, key):
    driver.get(url + "/")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "api-key"))
    began = time.monotonic()
    driver.find_element(By.ID, "api-key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit], #sign-in button").click()
    wait_page(driver, "overview")
    return (time.monotonic() - began) * 1000


def fetch(driver, method, path, csrf=None):
    """A request from the page itself (its cookie), as a forced request would be made."""
    return driver.execute_async_script(
        "const [method, path, csrf, done] = arguments;"
        "const headers = csrf ? {'X-CSRF-Token': csrf, 'content-type': 'application/json'}"
        "                     : {'content-type': 'application/json'};"
        "fetch(path, {method, headers, credentials: 'same-origin',"
        "             body: method === 'GET' ? undefined : '{}'})"
        "  .then(r => done(r.status)).catch(e => done(String(e)));",
        method, path, csrf)


def canvas_drawn(driver, container):
    """Whether the chart in `container` has a canvas with drawn (non-transparent) pixels."""
    return driver.execute_script(
        "const c = document.querySelector('#' + arguments[0] + ' canvas');"
        "if (!c || !c.width || !c.height) return 0;"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;"
        "return n;", container)


def list_all(api, path, key):
    items, cursor = [], ""
    while True:
        status, page = api.call("GET", f"{path}?limit=1000{cursor}", key)
        assert status == 200, page
        items += page["items"]
        if not page.get("next_cursor"):
            return items
        cursor = f"&cursor={page['next_cursor']}"


def number(driver, element_id):
    return float(driver.find_element(By.ID, element_id).text.replace(",", "").split()[0])


def shot(driver, directory, name):
    if directory:
        os.makedirs(directory, exist_ok=True)
        driver.save_screenshot(os.path.join(directory, f"{name}.png"))


def requests_made(driver):
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def main():
    ap = argparse.ArgumentParser()
    for name in ["url", "ca", "cert", "operator", "admin", "tenant"]:
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--screenshots")
    a = ap.parse_args()
    api = Api(a.url, a.ca)
    t = a.tenant
    out = {}
    urls = []
    driver = browser(a.cert)
    try:
        # Operator: overview, then the audience page over everything stored (the seeded
        # week of one-minute windows), its figures equal to the API's roll-up.
        shot_dir = a.screenshots
        driver.get(a.url + "/")
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "api-key"))
        out["first_load_ms"] = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return n.loadEventEnd - n.startTime;")
        shot(driver, shot_dir, "sign-in")
        out["sign_in_to_overview_ms"] = sign_in(driver, a.url, a.operator)
        assert driver.find_elements(By.CSS_SELECTOR, "#streams tr"), "no streams listed"
        status, streams = api.call("GET", f"/v1/t/{t}/streams", a.operator)
        table_text = driver.find_element(By.ID, "streams").text
        for stream in streams["items"]:
            assert stream["last_capture_time"], stream
            assert stream["last_capture_time"] in table_text, (stream, table_text)
        shot(driver, shot_dir, "overview")
        out["audience_ms"] = go(driver, "#/audience", "audience")
        status, hour = api.call("GET", f"/v1/t/{t}/rollups/hour", a.operator)
        assert status == 200, hour
        buckets = hour["buckets"]
        expected = {
            "total-ots": sum(b["opportunities_to_see"] for b in buckets),
            "total-watchers": sum(b["watchers"] for b in buckets),
            "total-windows": hour["windows"],
        }
        shown = {k: number(driver, k) for k in expected}
        assert shown == {k: float(v) for k, v in expected.items()}, (shown, expected)
        out["audience_windows"] = hour["windows"]
        for chart in ["chart-ots", "chart-dwell", "chart-attention"]:
            drawn = canvas_drawn(driver, chart)
            assert drawn > 100, f"{chart}: {drawn} drawn pixels"
            out[f"{chart}_pixels"] = drawn
        cells = driver.find_elements(By.CSS_SELECTOR, "#heatmap td")
        assert len(cells) >= 7 * 24, len(cells)
        # A zone named with HTML in it shows as text, and nothing of it runs.
        zones_text = driver.find_element(By.ID, "zones").text
        assert HOSTILE in zones_text, zones_text
        assert driver.execute_script("return window.__veil_xss === undefined"), "injected script ran"
        assert not driver.find_elements(By.CSS_SELECTOR, "#zones img"), "markup from data"
        # Flows and lines, equal to the API's roll-ups.
        status, flows = api.call("GET", f"/v1/t/{t}/rollups/flow", a.operator)
        flows_text = driver.find_element(By.ID, "flows").text
        for b in flows["buckets"]:
            assert f"{b['transitions']}" in flows_text.replace(",", ""), (b, flows_text)
        status, lines = api.call("GET", f"/v1/t/{t}/rollups/line", a.operator)
        assert lines["buckets"], lines
        assert lines["buckets"][0]["key"] in driver.find_element(By.ID, "lines").text
        shot(driver, shot_dir, "audience")
        # Inspection and compliance: the figures of the stored records; an operator (no images
        # scope) gets no image buttons.
        go(driver, "#/inspection", "inspection")
        inspections = list_all(api, f"/v1/t/{t}/inspections", a.operator)
        ng = [r for r in inspections if r["body"]["decision"] == "NG"]
        assert inspections and ng, "the seeded station's decisions"
        assert number(driver, "total-parts") == len(inspections)
        assert number(driver, "total-ng") == len(ng)
        assert len(driver.find_elements(By.CSS_SELECTOR, "#ng-list tbody tr")) == len(ng)
        assert not driver.find_elements(By.CSS_SELECTOR, ".view-image"), "images without the scope"
        assert canvas_drawn(driver, "chart-yield") > 100
        go(driver, "#/compliance", "compliance")
        cycles = list_all(api, f"/v1/t/{t}/compliance", a.operator)
        flagged = [r for r in cycles if r["body"]["status"] != "in_order"]
        assert number(driver, "total-cycles") == len(cycles)
        assert number(driver, "total-violations") == len(flagged) > 0
        assert canvas_drawn(driver, "chart-compliance") > 100
        shot(driver, shot_dir, "compliance")
        out["inspected_parts"], out["cycles"] = len(inspections), len(cycles)
        # No keys page for an operator, and a forced request is refused by the API.
        assert not driver.find_elements(By.CSS_SELECTOR, "a[href='#/keys']"), "keys in the nav"
        go(driver, "#/keys", "keys")
        assert "cannot manage keys" in driver.find_element(By.ID, "view").text
        assert fetch(driver, "GET", f"/v1/t/{t}/keys") == 403
        csrf = driver.execute_script(
            "return fetch('/v1/session', {credentials: 'same-origin'}).then(r => r.json())"
            "  .then(s => s.csrf_token)")
        assert fetch(driver, "POST", f"/v1/t/{t}/keys", csrf) == 403, "operator created a key"
        # A change without the CSRF token is refused even for the right scope.
        status, alerts = api.call("GET", f"/v1/t/{t}/integrity", a.operator)
        alert = alerts["items"][0]["id"]
        assert fetch(driver, "POST", f"/v1/t/{t}/integrity/{alert}/acknowledge") == 403
        # Sign-out ends the session: the page is back at sign-in, the cookie is refused.
        cookie = driver.get_cookie("__Host-veil_session")
        assert cookie and cookie.get("httpOnly") and cookie.get("secure"), cookie
        assert cookie.get("sameSite") == "Strict", cookie
        driver.find_element(By.ID, "sign-out").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "api-key"))
        assert fetch(driver, "GET", f"/v1/t/{t}/streams") == 401
        urls += requests_made(driver)

        # Admin: create, rotate and revoke a key through the page; the API agrees at each step.
        sign_in(driver, a.url, a.admin)
        go(driver, "#/keys", "keys")
        driver.find_element(By.ID, "key-name").send_keys("<script>window.__veil_xss=2</script>")
        driver.find_element(By.CSS_SELECTOR, "#create-key button").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, "new-token").text.strip().startswith("veil_")
            if d.find_elements(By.ID, "new-token") else False)
        token = driver.find_element(By.ID, "new-token").text.strip().split()[0]
        assert api.call("GET", f"/v1/t/{t}/streams", token)[0] == 200
        key_id = token.split("_")[1]
        wait_page(driver, "keys")
        assert "<script>window.__veil_xss=2</script>" in driver.find_element(By.ID, "keys").text
        assert driver.execute_script("return window.__veil_xss === undefined")
        shot(driver, shot_dir, "keys")
        driver.find_element(By.CSS_SELECTOR, f".rotate[data-key-id='{key_id}']").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.ID, "new-token")
            and d.find_element(By.ID, "new-token").text.strip().split()[0] not in ("", token))
        rotated = driver.find_element(By.ID, "new-token").text.strip().split()[0]
        assert api.call("GET", f"/v1/t/{t}/streams", token)[0] == 401, "the old secret still works"
        assert api.call("GET", f"/v1/t/{t}/streams", rotated)[0] == 200
        wait_page(driver, "keys")
        driver.find_element(By.CSS_SELECTOR, f".revoke[data-key-id='{key_id}']").click()
        WebDriverWait(driver, 10).until(lambda d: d.switch_to.alert).accept()
        deadline = time.monotonic() + 30
        while api.call("GET", f"/v1/t/{t}/streams", rotated)[0] != 401:
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.2)
        # With the images scope, an NG part's image is fetched and shown (a real JPEG, decoded).
        go(driver, "#/inspection", "inspection")
        buttons = driver.find_elements(By.CSS_SELECTOR, ".view-image")
        assert buttons, "no image buttons for an admin"
        buttons[0].click()
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "const i = document.querySelector('#image-view img');"
            "return i && i.complete && i.naturalWidth > 0;"))
        shot(driver, shot_dir, "inspection")
        for route, page in [("#/webhooks", "webhooks"), ("#/audit", "audit")]:
            go(driver, route, page)
            shot(driver, shot_dir, page)
        audit_text = driver.find_element(By.ID, "audit").text
        assert "session.begin" in audit_text, "sign-ins are audited"
        urls += requests_made(driver)
    finally:
        driver.quit()

    # Nothing left 127.0.0.1 (blob: and data: stay in the page).
    foreign = [u for u in urls
               if not u.startswith(("blob:", "data:")) and urlparse(u).hostname != "127.0.0.1"]
    assert not foreign, foreign
    assert len(urls) > 10, urls
    out["browser_requests"] = len(urls)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
