"""The pcapidx page in headless Chromium (Debian's, driven by Playwright).

Usage: page.py LINK PCAPIDX DB SHOTS_DIR LATER_CAPTURE...

Loads the share link, checks the overview and the flows, filters them,
opens a flow and downloads it (comparing the bytes with `pcapidx carve`),
then indexes LATER_CAPTURE files and waits for the page to show their flows
without a reload. A screenshot of each step goes to SHOTS_DIR. Exits non-zero,
saying what failed, on any failure.
"""
import subprocess
import sys
import time

from playwright.sync_api import expect, sync_playwright

link, pcapidx, db, shots = sys.argv[1:5]
later = sys.argv[5:]


def count(page):
    text = page.locator("#flow-count").inner_text()
    return int(text.split()[0].replace(",", ""))


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link)
    expect(page.locator("#flows tbody tr").first).to_be_visible(timeout=10000)
    expect(page.locator("#live")).to_have_text("live", timeout=10000)
    expect(page.locator("#chart rect").first).to_be_attached()
    assert page.locator("#cards .card").count() >= 4, "overview cards"
    before = count(page)
    assert before > 0, "flows counted"
    page.screenshot(path=f"{shots}/1-overview-and-flows.png", full_page=True)

    # Filter as the CLI does.
    page.fill("#f-where", "proto = 17")
    page.click("#filters button[type=submit]")
    expect(page.locator("#flow-count")).to_contain_text("match", timeout=10000)
    protos = page.locator("#flows tbody tr td:nth-child(2)").all_inner_texts()
    assert protos and all(t == "udp" for t in protos), f"filtered rows: {protos}"
    assert "where=proto" in page.url, f"the URL holds the filter: {page.url}"
    page.screenshot(path=f"{shots}/2-filtered.png", full_page=True)

    # A flow: its detail, packets and download.
    page.locator("#flows tbody tr").first.click()
    expect(page.locator("#detail")).to_be_visible(timeout=10000)
    expect(page.locator("#packets tr").nth(1)).to_be_visible(timeout=10000)
    flow_id = page.url.split("flow=")[1].split("&")[0]
    expect(page.locator("#stream")).to_contain_text("Follow:", timeout=10000)
    # MACs come with their vendors.
    expect(page.locator("#detail-fields td.cell-src_mac")).to_contain_text("(", timeout=10000)
    with page.expect_download() as d:
        page.click("#detail-download")
    got = open(d.value.path(), "rb").read()
    want = subprocess.run(
        [pcapidx, "--db", db, "carve", "--flow-id", flow_id, "-o", "-", "-q"],
        check=True, capture_output=True).stdout
    assert got == want, f"download of flow {flow_id}: {len(got)} bytes, carve {len(want)}"
    page.screenshot(path=f"{shots}/3-flow-detail.png", full_page=True)

    # A link opens the same view, in another browser (no cookie: the link
    # carries the token).
    assert "token=" in page.url, f"the link keeps its token: {page.url}"
    other = browser.new_page(viewport={"width": 1400, "height": 900})
    other.goto(page.url)
    expect(other.locator("#detail")).to_be_visible(timeout=10000)
    assert other.locator("#f-where").input_value() == "proto = 17"
    other.close()

    # Live: files indexed now show up without a reload.
    page.click("#clear")
    expect(page.locator("#flow-count")).not_to_contain_text("match", timeout=10000)
    before = count(page)
    subprocess.run([pcapidx, "--db", db, "index", "-q", *later], check=True)
    deadline = time.time() + 10
    while count(page) <= before:
        if time.time() > deadline:
            sys.exit(f"no new flow shown within 10 s of indexing (still {count(page)})")
        time.sleep(0.2)
    page.screenshot(path=f"{shots}/4-live-update.png", full_page=True)

    page.click("#tab-files")
    expect(page.locator("#files tr").nth(1)).to_be_visible(timeout=10000)
    page.screenshot(path=f"{shots}/5-files.png", full_page=True)

    # A file's flow count opens its flows: as many as the CLI's --in-file.
    link = page.locator("#files a.file-flows").first
    file_id, shown = link.get_attribute("data-file"), int(link.inner_text().replace(",", ""))
    link.click()
    expect(page.locator("#flow-count")).to_contain_text("match", timeout=10000)
    want = subprocess.run(
        [pcapidx, "--db", db, "flows", "--in-file", file_id, "--format", "csv"],
        check=True, capture_output=True, text=True).stdout.count("\n") - 1
    assert count(page) == shown == want, f"file {file_id}: page {count(page)}, files {shown}, CLI {want}"
    assert f"file={file_id}" in page.url, f"the URL holds the file: {page.url}"
    page.screenshot(path=f"{shots}/6-flows-of-a-file.png", full_page=True)
    if errors:
        sys.exit(f"errors in the page: {errors}")
    browser.close()
print("ok")
