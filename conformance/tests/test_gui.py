"""The web GUI in a real headless Chromium (README "Web GUI", issue 7).

The seed tutorial done entirely in the browser, against a real `cat2rs serve`:
sign in, upload an HDF5 stack (bitshuffle/LZ4, written by h5py + hdf5plugin)
through the @shared file input, `unfold` it from the prompt, open the 3-D
dataset, open the viewer, step frames with the slider and the keys, create
`expr = where(e < 10, e * 32000, e)` from the prompt and view it. The pixels
drawn on the canvas are checked against NumPy's answer for the frame the page
says it shows; screenshots go to $CAT2RS_SCREENSHOTS (default:
target/gui-screenshots).

Then every page and fragment of the GUI is requested for every dataset of the
read suite's fixtures, logged in and anonymous: none may answer a 5xx.

Chromium: Debian's `chromium` package (or $CAT2RS_CHROMIUM), driven by
Playwright's Python API; the test is skipped when neither is installed, which
scripts/install-deps.sh and conformance/setup-venv.sh make sure of in CI.
"""

import os
import pathlib
import shutil

import blosc2
import h5py
import hdf5plugin
import numpy as np
import pytest

from loginmode import cat2rs_only, start_server

pytestmark = cat2rs_only  # the reference's GUI is another program


USER = ("gui@example.com", "guipassword1")
ANON_TIMEOUT = 30

playwright_api = pytest.importorskip("playwright.sync_api")


def chromium_path():
    for p in (os.environ.get("CAT2RS_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if p and pathlib.Path(p).exists():
            return p
    return None


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("gui"))
    try:
        s.add_user(*USER, superuser=True)
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def page(srv):
    exe = chromium_path()
    if exe is None:
        if os.environ.get("CAT2RS_REQUIRE_GUI"):
            pytest.fail("no Chromium, and CAT2RS_REQUIRE_GUI is set (scripts/install-deps.sh installs it)")
        pytest.skip("no Chromium (apt-get install chromium)")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        yield page
        context.close()
        browser.close()


SHOTS = pathlib.Path(os.environ.get("CAT2RS_SCREENSHOTS", pathlib.Path(__file__).resolve().parents[2] / "target" / "gui-screenshots"))


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def detector_stack(nframes=6, h=40, w=50):
    """uint16 frames: Poisson noise with a few bright spots (values below 10 are common)."""
    rng = np.random.default_rng(7)
    frames = rng.poisson(6.0, size=(nframes, h, w)).astype(np.uint16)
    for k in range(nframes):
        for _ in range(3):
            y, x = rng.integers(2, h - 2), rng.integers(2, w - 2)
            frames[k, y - 1:y + 2, x - 1:x + 2] += np.uint16(rng.integers(500, 5000))
    return frames


def canvas_levels(page, sel=".pane[data-pane=viewer] .v-canvas"):
    """The red channel of the canvas (gray colour map: the level drawn) and its data attributes."""
    return page.evaluate(
        """(sel) => {
            const c = document.querySelector(sel);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const red = [];
            for (let k = 0; k < d.length; k += 4) red.push(d[k]);
            return {w: c.width, h: c.height, red, frame: c.dataset.frame, axis: c.dataset.axis,
                    vmin: Number(c.dataset.vmin), vmax: Number(c.dataset.vmax)};
        }""",
        sel,
    )


def expected_levels(frame):
    lo, hi = float(frame.min()), float(frame.max())
    span = hi - lo if hi > lo else 1.0
    return np.round((frame.astype(np.float64) - lo) * (255.0 / span)).astype(np.int64)


def wait_frame(page, index):
    page.wait_for_function(
        "(i) => { const c = document.querySelector('.pane[data-pane=viewer] .v-canvas'); return c && c.dataset.frame === String(i); }",
        arg=index,
    )


def check_frame(page, frame, index):
    wait_frame(page, index)
    got = canvas_levels(page)
    assert (got["h"], got["w"]) == frame.shape
    assert got["frame"] == str(index)
    assert page.locator(".pane[data-pane=viewer] .v-index").input_value() == str(index)
    red = np.array(got["red"]).reshape(frame.shape)
    want = expected_levels(frame)
    assert np.abs(red - want).max() <= 1, f"frame {index}: {np.count_nonzero(np.abs(red - want) > 1)} pixels differ"


def sign_in(page, srv):
    """Signs in through the login page unless the browser has a session already."""
    page.goto(srv.url + "/")
    if page.locator("#user-email").count():
        return
    page.goto(srv.url + "/login")
    page.fill("input[name=username]", USER[0])
    page.fill("input[name=password]", USER[1])
    page.click("button[type=submit]")
    page.wait_for_url(srv.url + "/?*")


def alias_of(page, path):
    return page.locator(f'#list tr[data-path="{path}"] .alias-name').input_value()


def run_prompt(page, command, ok=True):
    """Runs a prompt command; with `ok`, fails on an error alert (showing its text)."""
    page.evaluate("() => { document.querySelector('#alert').hidden = true; }")
    page.fill("#prompt-input", command)
    page.click("#prompt-go")
    page.wait_for_function("() => document.querySelector('#prompt-input').value === '' || !document.querySelector('#alert').hidden")
    if ok:
        alert = page.locator("#alert")
        if alert.is_visible():
            assert "error" not in (alert.get_attribute("class") or ""), page.locator("#alert-text").inner_text()


def test_tutorial_in_the_browser(srv, page, tmp_path):
    frames = detector_stack()
    h5path = tmp_path / "det.h5"
    with h5py.File(h5path, "w") as f:
        f.create_dataset("entry/data/data", data=frames, chunks=(1,) + frames.shape[1:], **hdf5plugin.Bitshuffle(cname="lz4"))

    # Sign in.
    page.goto(srv.url + "/login")
    shot(page, "01-login")
    page.fill("input[name=username]", USER[0])
    page.fill("input[name=password]", USER[1])
    page.click("button[type=submit]")
    page.wait_for_url(srv.url + "/?*")
    assert page.locator("#user-email").inner_text() == USER[0]

    # Upload the HDF5 file to @shared with the root's file input.
    page.set_input_files('#roots input[type=file][data-root="@shared"]', str(h5path))
    page.wait_for_selector('#list tr[data-path="@shared/det.h5"]')
    page.wait_for_selector("#info-title:text-is('@shared/det.h5')")
    assert page.locator('#roots input[value="@shared"]').is_checked()
    # The banner's disk usage follows the upload (13.5 KB here), without a reload.
    page.wait_for_function("() => document.querySelector('#usage-text').textContent.includes('KB')")
    shot(page, "02-uploaded")

    # Unfold it from the prompt, by its alias.
    run_prompt(page, f"unfold {alias_of(page, '@shared/det.h5')}")
    data_path = "@shared/det/entry/data/data.b2nd"
    page.wait_for_selector(f'#list tr[data-path="{data_path}"]')
    assert "Unfolded" in page.locator("#alert-text").inner_text()
    shot(page, "03-unfolded")

    # Open the 3-D dataset: tabs Data, Tomography, Meta.
    page.click(f'#list tr[data-path="{data_path}"] a')
    page.wait_for_selector(f"#info-title:text-is('{data_path}')")
    tabs = page.locator("#meta .tab").all_inner_texts()
    assert tabs == ["Data", "Tomography", "Meta"], tabs
    page.wait_for_selector(".pane[data-pane=data] table.values")
    assert page.locator(".pane[data-pane=data] table.values td").first.inner_text() == str(frames[0, 0, 0])
    assert "/roots/@shared/det/entry/data/data.b2nd" in page.url

    # The viewer: frame 0, then the arrow key, then the slider.
    page.click("#meta .tab[data-tab=viewer]")
    check_frame(page, frames[0], 0)
    shot(page, "04-viewer-frame0")
    page.keyboard.press("ArrowRight")
    check_frame(page, frames[1], 1)
    slider = page.locator(".pane[data-pane=viewer] .v-slider")
    slider.evaluate("(s) => { s.value = '4'; s.dispatchEvent(new Event('input', {bubbles: true})); }")
    check_frame(page, frames[4], 4)
    page.fill(".pane[data-pane=viewer] .v-index", "2")
    page.press(".pane[data-pane=viewer] .v-index", "Enter")
    check_frame(page, frames[2], 2)
    assert "#viewer" in page.url
    page.select_option(".pane[data-pane=viewer] .v-cmap", "viridis")
    shot(page, "05-viewer-viridis")
    page.select_option(".pane[data-pane=viewer] .v-cmap", "gray")

    # The tutorial's expression, from the prompt, with the alias renamed to `e`.
    page.locator(f'#list tr[data-path="{data_path}"] .alias-name').fill("e")
    run_prompt(page, "expr = where(e < 10, e * 32000, e)")
    page.wait_for_selector("#info-title:text-is('@personal/expr.b2nd')")
    assert page.locator('#roots input[value="@personal"]').is_checked()
    page.click("#meta .tab[data-tab=viewer]")
    expected = np.where(frames < 10, frames * np.uint16(32000), frames)
    check_frame(page, expected[0], 0)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    check_frame(page, expected[2], 2)
    shot(page, "06-expression-viewer")
    assert page.errors == [], page.errors

    # A deep link opens the same dataset and tab on a fresh page load.
    page.goto(page.url)
    page.wait_for_selector("#info-title:text-is('@personal/expr.b2nd')")
    check_frame(page, expected[0], 0)


def test_prompt_errors_show_and_lose_nothing(srv, page):
    sign_in(page, srv)
    page.wait_for_selector("#prompt-input")
    run_prompt(page, "frobnicate x", ok=False)
    assert "Invalid command" in page.locator("#alert-text").inner_text()
    run_prompt(page, "bad = nosuchname + 1", ok=False)
    assert "nosuchname is not in the list of available datasets" in page.locator("#alert-text").inner_text()
    run_prompt(page, "lsu")
    assert USER[0] in page.locator("#alert-text").inner_text()


def gui_urls(path):
    from urllib.parse import quote

    p = quote(path, safe="/@!")
    return [
        f"/roots/{p}",
        f"/gui/info/{p}",
        f"/gui/view/{p}",
        f"/gui/view/{p}?start=1,1,1&size=3,3,3",
        f"/gui/display/{p}",
        f"/gui/frame/{p}?axis=0&i=0",
        f"/gui/frame/{p}?axis=1&i=1&max=16",
    ]


def test_every_page_and_fragment_answers_without_5xx(server, http):
    """The read suite's fixtures (every kind of dataset and file), anonymous: 2xx or 4xx only."""
    paths = []
    for root in ("@public",):
        r = http.get(f"/api/list/{root}")
        paths += [f"{root}/{name}" for name in r.json()]
    assert paths
    for url in ["/", "/gui/list?roots=@public", "/gui/list?roots=@public&search=b2nd", "/static/app.js",
                "/static/viewer.js", "/static/app.css", "/static/nothing.js"]:
        r = http.get(url)
        assert r.status_code < 500, (url, r.status_code)
    for path in paths:
        for url in gui_urls(path):
            r = http.get(url)
            assert r.status_code < 500, (url, r.status_code, r.text[:300])


def test_every_fragment_logged_in_without_5xx(srv, tmp_path):
    """Logged in, over every dataset the tutorial left (HDF5 file, proxies, attrs, an expression)."""
    c = srv.http(srv.login_cookie(*USER), timeout=ANON_TIMEOUT)
    if True:
        for page_url in ["/", "/login", "/logout", "/register", "/forgot-password", "/forgot-password-ok",
                         "/reset-password/not-a-token"]:
            r = c.get(page_url, follow_redirects=False)
            assert r.status_code < 500, (page_url, r.status_code)
        paths = []
        for root in ("@personal", "@shared", "@public"):
            paths += [f"{root}/{n}" for n in c.get(f"/api/list/{root}").json()]
        r = c.get("/gui/list?roots=@personal&roots=@shared&roots=@public")
        assert r.status_code == 200
        for path in paths:
            for url in gui_urls(path):
                r = c.get(url)
                assert r.status_code < 500, (url, r.status_code, r.text[:300])


def frame_of(client, path, **params):
    r = client.get(f"/gui/frame/{path}", params=params)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    h, w, c = map(int, r.headers["x-frame-shape"].split(","))
    pixels = np.frombuffer(r.content, dtype="<f4").reshape(h, w, c)
    return pixels, tuple(map(int, r.headers["x-frame-full"].split(",")))


def test_viewer_frames_of_every_image_kind(srv, tmp_path):
    """/gui/frame: frames along each axis of a 3-D stack, a 2-D image, RGB(A) stacks (channels last),
    shrunk by block means; bad axes and indices are 400s."""
    admin = srv.client(USER)
    c = srv.http(srv.login_cookie(*USER))
    rng = np.random.default_rng(11)
    cases = {
        "stack.b2nd": rng.integers(0, 1000, (4, 6, 8)).astype(np.int32),
        "image.b2nd": rng.normal(size=(6, 8)).astype(np.float32),
        "rgb.b2nd": rng.integers(0, 255, (6, 8, 3)).astype(np.uint8),
        "rgba-stack.b2nd": rng.integers(0, 255, (3, 6, 8, 4)).astype(np.uint8),
    }
    for name, arr in cases.items():
        local = tmp_path / name
        blosc2.asarray(arr, urlpath=str(local), mode="w")
        admin.upload(local, f"@personal/frames/{name}")
    stack = cases["stack.b2nd"].astype(np.float32)
    for axis in range(3):
        for i in (0, stack.shape[axis] - 1):
            got, _ = frame_of(c, "@personal/frames/stack.b2nd", axis=axis, i=i)
            np.testing.assert_array_equal(got[..., 0], np.take(stack, i, axis=axis))
    got, full = frame_of(c, "@personal/frames/image.b2nd")
    np.testing.assert_array_equal(got[..., 0], cases["image.b2nd"])
    got, _ = frame_of(c, "@personal/frames/rgb.b2nd")
    np.testing.assert_array_equal(got, cases["rgb.b2nd"].astype(np.float32))
    got, _ = frame_of(c, "@personal/frames/rgba-stack.b2nd", axis=0, i=2)
    np.testing.assert_array_equal(got, cases["rgba-stack.b2nd"][2].astype(np.float32))
    # Shrunk: 6x8 into at most 4 pixels a side, by means of 2x2 blocks.
    got, full = frame_of(c, "@personal/frames/stack.b2nd", axis=0, i=1, max=16)
    assert full == (6, 8)
    big = np.repeat(np.repeat(stack[1], 4, axis=0), 4, axis=1)  # 24 x 32
    local = tmp_path / "big.b2nd"
    blosc2.asarray(big[None], urlpath=str(local), mode="w")
    admin.upload(local, "@personal/frames/big.b2nd")
    got, full = frame_of(c, "@personal/frames/big.b2nd", axis=0, i=0, max=16)
    assert full == (24, 32) and got.shape == (12, 16, 1)
    np.testing.assert_allclose(got[..., 0], big.reshape(12, 2, 16, 2).mean(axis=(1, 3)))
    for params in ({"axis": 3, "i": 0}, {"axis": 0, "i": 4}, {"axis": 0, "i": -1}, {"axis": "x"}):
        r = c.get("/gui/frame/@personal/frames/stack.b2nd", params=params)
        assert r.status_code == 400, (params, r.status_code, r.text)
    r = c.get("/gui/frame/@personal/frames/nothing.b2nd")
    assert r.status_code == 404, r.status_code


def test_display_of_files(srv, tmp_path):
    """The Display tab: JSON pretty-printed, Markdown rendered (raw HTML and script links inert), text,
    notebooks as HTML (outputs never run), images by URL."""
    import html
    import json

    admin = srv.client(USER)
    c = srv.http(srv.login_cookie(*USER))
    files = {
        "doc.md": "# Results\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(1)) and **bold**\n",
        "notes.txt": "plain <text>\n",
        "meta.json": '{"a": [1, 2], "b": {"c": "d"}}',
        "nb.ipynb": json.dumps({
            "nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": ["## Analysis"]},
                {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["x = 1 < 2\n", "print(x)"],
                 "outputs": [{"output_type": "stream", "name": "stdout", "text": ["True\n"]},
                             {"output_type": "display_data", "metadata": {},
                              "data": {"text/html": ["<script>alert(2)</script>"], "text/plain": ["<obj>"]}}]},
            ],
        }),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        admin.upload(tmp_path / name, f"@personal/files/{name}")
    for name in files:
        info = c.get(f"/gui/info/@personal/files/{name}")
        assert info.status_code == 200 and 'data-tab="display"' in info.text, (name, info.text[:300])
    md = c.get("/gui/display/@personal/files/doc.md").text
    assert "<h1>Results</h1>" in md and "<strong>bold</strong>" in md, md
    assert "<script>" not in md and "javascript:" not in md, md
    assert "<script>alert(1)</script>" in html.unescape(md)  # shown as text
    txt = c.get("/gui/display/@personal/files/notes.txt").text
    assert "<text>" not in txt and "plain <text>" in html.unescape(txt), txt
    js = html.unescape(c.get("/gui/display/@personal/files/meta.json").text)
    assert '"b": {\n    "c": "d"\n  }' in js, js
    nb = c.get("/gui/display/@personal/files/nb.ipynb").text
    assert "<h2>Analysis</h2>" in nb and "x = 1 &lt; 2" in nb and "True" in nb, nb
    assert "<script>" not in nb and "&lt;obj&gt;" in nb, nb
    r = c.get("/gui/display/@personal/files/missing.md")
    assert r.status_code == 404, r.status_code


def test_archives_unpack_into_a_folder(srv, page, tmp_path):
    """A .zip or .tar.gz dropped on a root is unpacked into <root>/<name>/, each member stored like an
    upload (arrays kept, other files compressed), hidden files skipped; a member that would escape the
    folder refuses the whole archive and nothing is written."""
    import io
    import tarfile
    import zipfile

    arr = np.arange(24, dtype=np.int16).reshape(4, 6)
    blosc2.asarray(arr, urlpath=str(tmp_path / "arr.b2nd"), mode="w")
    zpath = tmp_path / "bundle.zip"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("readme.txt", "hello\n")
        z.write(tmp_path / "arr.b2nd", "data/arr.b2nd")
        z.writestr(".hidden", "no")
        z.writestr("__MACOSX/data/._arr.b2nd", "no")
    c = srv.http(srv.login_cookie(*USER))
    with open(zpath, "rb") as f:
        r = c.post("/gui/unpack/@personal", files={"file": ("bundle.zip", f)})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json() == ["@personal/bundle/readme.txt", "@personal/bundle/data/arr.b2nd"]
    listed = c.get("/api/list/@personal/bundle").json()
    assert sorted(listed) == ["data/arr.b2nd", "readme.txt"], listed
    admin = srv.client(USER)
    np.testing.assert_array_equal(admin.fetch("@personal/bundle/data/arr.b2nd"), arr)
    assert c.get("/api/download/@personal/bundle/readme.txt").content == b"hello\n"

    tgz = tmp_path / "run.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        for name, data in (("log/a.txt", b"a" * 1000), ("b.txt", b"b")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with open(tgz, "rb") as f:
        r = c.post("/gui/unpack/@shared", files={"file": ("run.tar.gz", f)})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json() == ["@shared/run/log/a.txt", "@shared/run/b.txt"]

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("fine.txt", "x")
        z.writestr("../escaped.txt", "x")
    with open(evil, "rb") as f:
        r = c.post("/gui/unpack/@personal", files={"file": ("evil.zip", f)})
    assert r.status_code == 400 and "../escaped.txt" in r.text, (r.status_code, r.text)
    assert c.get("/api/list/@personal/evil").json() == []
    with open(zpath, "rb") as f:
        r = srv.http().post("/gui/unpack/@personal", files={"file": ("bundle.zip", f)})
    assert r.status_code == 401, r.status_code
    not_archive = tmp_path / "x.txt"
    not_archive.write_text("x")
    with open(not_archive, "rb") as f:
        r = c.post("/gui/unpack/@personal", files={"file": ("x.txt", f)})
    assert r.status_code == 400, r.status_code

    # In the browser: the file input unpacks an archive and opens its first file.
    sign_in(page, srv)
    page.wait_for_selector("#prompt-input")
    zpath2 = tmp_path / "again.zip"
    shutil.copy(zpath, zpath2)
    page.set_input_files('#roots input[type=file][data-root="@shared"]', str(zpath2))
    page.wait_for_selector("#info-title:text-is('@shared/again/readme.txt')")
    page.wait_for_selector('#list tr[data-path="@shared/again/data/arr.b2nd"]')


def table_rows(fragment):
    """(row index, cells) of the data table of a records fragment."""
    import html
    import re

    body = fragment.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        index = int(re.search(r"<th>(\d+)</th>", tr).group(1))
        rows.append((index, [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]))
    return rows


def test_record_arrays_in_the_data_tab(srv, page, tmp_path):
    """Structured arrays: the first five fields by default, chosen fields, a filter over fields,
    an order, pages; rows keep their original indices; bad filters and fields are 400s."""
    admin = srv.client(USER)
    c = srv.http(srv.login_cookie(*USER))
    rng = np.random.default_rng(5)
    n = 30
    rec = np.zeros(n, dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S5"), ("d", "?"), ("e", "<u2"), ("f", "<i8")])
    rec["a"] = rng.integers(0, 30, n)
    rec["b"] = rng.random(n)
    rec["c"] = [f"r{i}".encode() for i in range(n)]
    rec["d"] = rec["a"] % 2 == 0
    rec["e"] = np.arange(n)
    rec["f"] = -np.arange(n)
    blosc2.asarray(rec, urlpath=str(tmp_path / "rec.b2nd"), mode="w", chunks=(7,), blocks=(3,))
    admin.upload(tmp_path / "rec.b2nd", "@personal/rec.b2nd")
    url = "/gui/view/@personal/rec.b2nd"

    frag = c.get(url).text
    assert ">a</th><th>b</th><th>c</th><th>d</th><th>e</th></tr>" in frag, frag[:500]
    rows = table_rows(frag)
    assert [i for i, _ in rows] == list(range(20))
    assert rows[3][1][:1] == [str(rec["a"][3])] and rows[3][1][2] == "b'r3'" and rows[3][1][3] in ("True", "False")

    rows = table_rows(c.get(url, params=[("fields", "f"), ("fields", "c"), ("start", "25"), ("size", "10")]).text)
    assert rows == [(i, [str(-i), f"b'r{i}'"]) for i in range(25, 30)]

    keep = np.nonzero((rec["a"] > 10) & (rec["b"] < 0.5))[0]
    frag = c.get(url, params={"filter": "(a > 10) & (b < 0.5)", "fields": "e", "size": "100"}).text
    assert [i for i, _ in table_rows(frag)] == list(keep)
    assert f"{len(keep)} rows match the filter" in frag

    order = np.argsort(rec["b"], kind="stable")
    rows = table_rows(c.get(url, params={"sortby": "b", "fields": "e", "start": "2", "size": "5"}).text)
    assert [i for i, _ in rows] == list(order[2:7])

    both = keep[np.argsort(rec["a"][keep], kind="stable")]
    rows = table_rows(c.get(url, params={"filter": "(a > 10) & (b < 0.5)", "sortby": "a", "fields": "a"}).text)
    assert [i for i, _ in rows] == list(both[:20])
    assert [int(cells[0]) for _, cells in rows] == sorted(int(x) for x in rec["a"][keep])[:20]

    for params in ({"filter": "a >"}, {"filter": "nosuch > 1"}, {"fields": "nosuch"}, {"sortby": "nosuch"}):
        r = c.get(url, params=params)
        assert r.status_code == 400, (params, r.status_code, r.text[:200])

    # In the browser: the Data tab's filter box narrows the rows.
    sign_in(page, srv)
    page.goto(srv.url + "/roots/@personal/rec.b2nd?roots=@personal")
    page.wait_for_selector(".pane[data-pane=data] table.records")
    page.fill(".records-controls input[name=filter]", "(a > 10) & (b < 0.5)")
    page.press(".records-controls input[name=filter]", "Enter")
    page.wait_for_function(
        "(n) => document.querySelectorAll('.pane[data-pane=data] table.records tbody tr').length === n",
        arg=min(len(keep), 20),
    )
    shown = page.locator(".pane[data-pane=data] table.records tbody th").all_inner_texts()
    assert shown == [str(i) for i in keep[:20]]


def test_account_pages_in_the_browser(srv, page):
    """Sign up, sign in, sign out, a wrong password, forgot and reset password: each page's form in a
    fresh browser session, its answer shown, the next page the one a user expects."""
    import re

    ctx = page.context.browser.new_context()
    p = ctx.new_page()
    p.set_default_timeout(30_000)
    try:
        email, password = "newcomer@example.com", "first-password"
        p.goto(srv.url + "/register")
        p.fill("input[name=email]", email)
        p.fill("input[name=password]", password)
        p.click("button[type=submit]")
        p.wait_for_url(re.compile(r".*/login\?message=.*"))
        assert "Successful registration" in p.locator("#account-message").inner_text()

        p.fill("input[name=username]", email)
        p.fill("input[name=password]", "wrong-password")
        p.click("button[type=submit]")
        p.wait_for_selector("#account-message.error")
        assert "Incorrect credentials" in p.locator("#account-message").inner_text()

        p.fill("input[name=password]", password)
        p.click("button[type=submit]")
        p.wait_for_url(srv.url + "/?*")
        assert p.locator("#user-email").inner_text() == email
        p.click("#sign-out")
        p.wait_for_url(srv.url + "/logout")
        assert "Have a good day" in p.content()
        p.goto(srv.url + "/")
        assert p.locator("#sign-in").count() == 1

        start = srv.log_size()
        p.goto(srv.url + "/forgot-password")
        p.fill("input[name=email]", email)
        p.click("button[type=submit]")
        p.wait_for_url(srv.url + "/forgot-password-ok")
        link = srv.wait_log(r"reset-password/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", start=start)
        assert link, "the server logs the reset link"
        p.goto(srv.url + "/reset-password/" + link.group(1))
        p.fill("input[name=password]", "second-password")
        p.click("button[type=submit]")
        p.wait_for_url(re.compile(r".*/login\?message=.*"))
        p.fill("input[name=username]", email)
        p.fill("input[name=password]", "second-password")
        p.click("button[type=submit]")
        p.wait_for_url(srv.url + "/?*")
        assert p.locator("#user-email").inner_text() == email
        # Logged in, the account pages send you home.
        p.goto(srv.url + "/login")
        assert p.url.split("?")[0] == srv.url + "/"
        # Signed out, a used reset link is refused in the page's own words.
        p.click("#sign-out")
        p.wait_for_url(srv.url + "/logout")
        p.goto(srv.url + "/reset-password/" + link.group(1))
        p.fill("input[name=password]", "third-password")
        p.click("button[type=submit]")
        p.wait_for_selector("#account-message.error")
        assert "Invalid or expired link" in p.locator("#account-message").inner_text()
    finally:
        ctx.close()


def test_every_fixture_logged_in_without_5xx(fixtures_src, tmp_path_factory):
    """The read suite's fixtures (every kind of dataset and file, in @public and @shared) through every
    page and fragment, logged in: 2xx or 4xx only."""
    work = tmp_path_factory.mktemp("gui-fixtures")
    state = work / "state"
    state.mkdir()
    for sub in ("public", "shared"):
        shutil.copytree(fixtures_src / sub, state / sub)
    s = start_server(work, statedir=state)
    try:
        # The harness's add_user runs its own asyncio loop: not on the thread Playwright's loop holds.
        import threading

        adding = threading.Thread(target=s.add_user, args=USER)
        adding.start()
        adding.join()
        c = s.http(s.login_cookie(*USER), timeout=ANON_TIMEOUT)
        paths = []
        for root in ("@shared", "@public"):
            paths += [f"{root}/{n}" for n in c.get(f"/api/list/{root}").json()]
        assert len(paths) > 10, paths
        assert c.get("/gui/list?roots=@shared&roots=@public").status_code == 200
        for path in paths:
            for url in gui_urls(path):
                r = c.get(url)
                assert r.status_code < 500, (url, r.status_code, r.text[:300])
    finally:
        s.close()
