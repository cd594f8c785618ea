"""The portal in headless Chromium: register a CSV through the page, see its rejected rows with reasons,
watch its devices reach "Ready for user", filter, open a device's timeline, export CSV; a partner cannot
see another partner's device by changing the URL; the page works at 390 px and under its CSP.
Screenshots of every page go to build/screenshots/ (docs/screenshots/ holds current ones)."""

from __future__ import annotations

import csv
import io

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from shared.storage import blob_service
from tests.helpers import csv_bytes, portal_row

from .conftest import SHOTS

pytestmark = [pytest.mark.integration]


def wait(driver, timeout: float = 60):
    return WebDriverWait(driver, timeout, poll_frequency=0.2)


def sign_in(driver, front, who: str) -> None:
    driver.delete_all_cookies()
    driver.get(front.origin + "/.auth/login/aad")
    driver.find_element(By.CSS_SELECTOR, f"input[name=as][value='{who}']").click()
    name = driver.find_element(By.ID, "name")
    name.clear()
    name.send_keys(f"{who.replace(':', '-')}@contoso.test")
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "who"), "Signed in as"))


def fetch(driver, url: str) -> dict:
    """A request from the page itself (its cookie, its origin): status and text."""
    return driver.execute_async_script(
        "const done = arguments[1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(async r => done({status: r.status, text: await r.text()}))"
        ".catch(e => done({status: 0, text: String(e)}));",
        url,
    )


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def no_csp_violations(driver) -> None:
    logs = [entry["message"] for entry in driver.get_log("browser")]
    assert not [m for m in logs if "Content Security Policy" in m or "Refused to" in m], logs


def every_control_labelled(driver) -> None:
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]), select, button')].filter(c =>"
        " !(c.labels && c.labels.length) && !c.getAttribute('aria-label') && !c.textContent.trim()).map(c => c.outerHTML)"
    )
    assert unlabelled == []


def test_admin_registers_watches_filters_opens_timeline_and_exports(stack, browser, tmp_path):
    driver, front = browser, stack["front"]
    driver.get(front.url)
    wait(driver).until(ec.presence_of_element_located((By.LINK_TEXT, "Sign in")))
    shot(driver, "sign-in")
    sign_in(driver, front, "admin")
    shot(driver, "devices-empty")

    # Register devices: two good rows, a row whose hash belongs to another serial, a bad user.
    upload = tmp_path / "new laptops.csv"
    upload.write_bytes(
        csv_bytes(
            [
                portal_row("BR-1001", user="ann@contoso.test"),
                portal_row("BR-1002"),
                portal_row("BR-1003", hash_serial="OTHER-1"),
                portal_row("BR-1004", user="not a user"),
            ]
        )
    )
    driver.find_element(By.LINK_TEXT, "Register devices").click()
    wait(driver).until(ec.presence_of_element_located((By.ID, "files"))).send_keys(str(upload))
    Select(driver.find_element(By.ID, "profile")).select_by_value("standard")
    every_control_labelled(driver)
    driver.find_element(By.CSS_SELECTOR, "#main form button[type=submit]").click()
    status = (By.CSS_SELECTOR, "#register-progress .upload-status[data-status=complete]")
    wait(driver, 90).until(ec.presence_of_element_located(status))
    rejected = driver.find_elements(By.CSS_SELECTOR, "#register-progress tr.row-rejected")
    reasons = " ".join(r.text for r in rejected)
    assert len(rejected) == 2, reasons
    assert "hash.serial_mismatch" in reasons and "user.invalid" in reasons
    settled = (By.CSS_SELECTOR, "#register-progress .upload-status[data-waiting='0']")
    wait(driver, 120).until(ec.presence_of_element_located(settled))
    states = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#register-progress table.devices .state")]
    assert states == ["Ready for user", "Ready for user"]
    shot(driver, "register")

    # Another device in a partner's area, registered the way a partner's tool would.
    blob_service(stack["settings"]).get_blob_client("partner-fabrikam", "standard/fab.csv").upload_blob(
        csv_bytes([portal_row("FAB-0001")]), overwrite=True
    )
    # Devices: filter by state, search by serial, sort, open the timeline.
    driver.get(front.url + "#/devices")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#devices tbody a")))
    wait(driver, 60).until(lambda d: "FAB-0001" in fetch(d, "/api/portal/api/devices?serial=FAB")["text"])
    Select(driver.find_element(By.ID, "state")).select_by_visible_text("Ready for user")
    wait(driver).until(lambda d: "state=Ready" in d.current_url)
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#devices tbody .state")))
    badges = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#devices tbody .state")]
    assert badges and set(badges) == {"Ready for user"}
    search = driver.find_element(By.ID, "serial")
    search.send_keys("br-100")
    search.submit()
    wait(driver).until(lambda d: "serial=br-100" in d.current_url)
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#devices tbody a")))
    serials = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#devices td.serial")]
    assert serials == ["BR-1001", "BR-1002"]
    driver.find_element(By.CSS_SELECTOR, "#devices th button.sort").click()  # serial column
    driver.find_element(By.CSS_SELECTOR, "#devices th button.sort").click()  # again: descending
    serials = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#devices td.serial")]
    assert serials == ["BR-1002", "BR-1001"]
    row = driver.find_element(By.XPATH, "//table[@id='devices']//tr[td//a[text()='BR-1001']]")
    assert "ann@contoso.test" in row.text and "never" in row.text and "new-laptops" in row.text
    shot(driver, "devices")

    # Export the current view: the filtered devices, the devices.csv columns.
    export = driver.find_element(By.ID, "export").get_attribute("href")
    answer = fetch(driver, export)
    assert answer["status"] == 200
    rows = list(csv.DictReader(io.StringIO(answer["text"].lstrip("\ufeff"))))
    assert [r["Serial"] for r in rows] == ["BR-1001", "BR-1002"]
    assert rows[0]["Assigned user"] == "ann@contoso.test" and rows[0]["Last seen"] == "never"

    # The device's timeline, reached by keyboard: focus the link and press Enter.
    link = driver.find_element(By.LINK_TEXT, "BR-1001")
    link.send_keys("\ue007")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#timeline li")))
    timeline = driver.find_element(By.ID, "timeline").text
    assert "Received in device-uploads/standard/new-laptops" in timeline and "line 2" in timeline
    assert "Graph import call accepted" in timeline and "Ready for user" in timeline
    assert not driver.find_elements(By.ID, "retry")  # nothing to do for a ready device
    shot(driver, "device")

    driver.find_element(By.LINK_TEXT, "Uploads").click()
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#uploads tbody tr")))
    uploads = driver.find_element(By.ID, "uploads").text
    assert "admin (admin@contoso.test, portal)" in uploads and "partner fabrikam" in uploads
    shot(driver, "uploads")

    # A phone: no sideways scrolling, every row a labelled card.
    driver.set_window_size(390, 844)
    driver.get(front.url + "#/devices")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#devices tbody a")))
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    shot(driver, "devices-phone")
    driver.set_window_size(1280, 900)
    no_csp_violations(driver)


def test_a_partner_sees_only_its_own_devices_even_by_url(stack, browser):
    driver, front = browser, stack["front"]
    blob_service(stack["settings"]).get_blob_client("partner-fabrikam", "standard/other.csv").upload_blob(
        csv_bytes([portal_row("FAB-0002")]), overwrite=True
    )
    blob_service(stack["settings"]).get_blob_client("partner-contoso", "standard/mine.csv").upload_blob(
        csv_bytes([portal_row("CON-0001")]), overwrite=True
    )
    sign_in(driver, front, "partner:contoso")
    wait(driver, 60).until(lambda d: "CON-0001" in fetch(d, "/api/portal/api/devices")["text"])
    driver.get(front.url + "#/devices?partner=fabrikam")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#devices tbody tr")))
    shown = driver.find_element(By.ID, "devices").text
    assert "CON-0001" in shown and "FAB-" not in shown
    driver.get(front.url + "#/devices/FAB-0002")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#main .error")))
    assert "no device" in driver.find_element(By.CSS_SELECTOR, "#main .error").text
    assert fetch(driver, "/api/portal/api/devices/FAB-0002")["status"] == 404
    assert "FAB-" not in fetch(driver, "/api/portal/api/devices?partner=fabrikam")["text"]
    assert "FAB-" not in fetch(driver, "/api/portal/api/devices.csv?partner=fabrikam")["text"]
    uploads = fetch(driver, "/api/portal/api/uploads")["text"]
    assert "mine.csv" in uploads and "other.csv" not in uploads
    # The profile list and the upload address are the partner's own.
    driver.get(front.url + "#/register")
    profiles = [o.text for o in Select(wait(driver).until(lambda d: d.find_element(By.ID, "profile"))).options]
    assert profiles == ["standard"]
    shot(driver, "partner-register")
    no_csp_violations(driver)
