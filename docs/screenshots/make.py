#!/usr/bin/env python3
"""Makes the README's screenshots of the web GUI: the tutorial's screens on a
detector-like stack (Debye-Scherrer rings, Poisson noise, bright spots), in a
real Chromium against a real `cat2rs serve`.

Usage (the conformance venv's python, after `cargo build`):
    .venv/bin/python docs/screenshots/make.py [--bin target/debug/cat2rs]
Writes docs/screenshots/*.png.
"""

import argparse
import os
import pathlib
import shutil
import sys
import tempfile

import h5py
import hdf5plugin
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO / "conformance" / "tests"), str(REPO / "conformance" / "pylib")]

USER = ("scientist@example.com", "tutorial-pass")


def rings(nframes=24, size=384):
    """Frames of rings whose radii drift, with Poisson noise and hot pixels."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:size, :size]
    r = np.hypot(y - size * 0.52, x - size * 0.47)
    frames = np.empty((nframes, size, size), np.uint16)
    for k in range(nframes):
        mean = 4.0
        for r0, amp in ((60 + k, 40.0), (110 + 0.5 * k, 25.0), (160, 15.0)):
            mean = mean + amp * np.exp(-((r - r0) ** 2) / 18.0)
        frame = rng.poisson(mean).astype(np.uint16)
        frame[rng.integers(0, size, 20), rng.integers(0, size, 20)] = 4000
        frames[k] = frame
    return frames


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(REPO / "target" / "debug" / "cat2rs"))
    args = ap.parse_args()
    os.environ["CAT2RS_BIN"] = os.path.abspath(args.bin)
    from loginmode import start_server
    from playwright.sync_api import sync_playwright

    work = pathlib.Path(tempfile.mkdtemp(prefix="cat2rs-shots-"))
    h5 = work / "kevlar.h5"
    with h5py.File(h5, "w") as f:
        data = rings()
        f.create_dataset("entry/data/data", data=data, chunks=(1,) + data.shape[1:], **hdf5plugin.Bitshuffle(cname="lz4"))
        f["entry"].attrs["title"] = "rings"
    srv = start_server(work / "server")
    try:
        srv.add_user(*USER, superuser=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(srv.url + "/login")
            page.fill("input[name=username]", USER[0])
            page.fill("input[name=password]", USER[1])
            page.screenshot(path=str(HERE / "login.png"))
            page.click("button[type=submit]")
            page.wait_for_url(srv.url + "/?*")
            page.set_input_files('#roots input[type=file][data-root="@shared"]', str(h5))
            page.wait_for_selector("#info-title:text-is('@shared/kevlar.h5')")
            alias = page.locator('#list tr[data-path="@shared/kevlar.h5"] .alias-name').input_value()
            page.fill("#prompt-input", f"unfold {alias}")
            page.click("#prompt-go")
            data_path = "@shared/kevlar/entry/data/data.b2nd"
            page.wait_for_selector(f'#list tr[data-path="{data_path}"]')
            page.click(f'#list tr[data-path="{data_path}"] a')
            page.wait_for_selector(".pane[data-pane=data] table.values")
            page.screenshot(path=str(HERE / "browser.png"))
            page.click("#meta .tab[data-tab=viewer]")
            page.wait_for_function("() => document.querySelector('.v-canvas').dataset.frame === '0'")
            page.select_option(".v-cmap", "viridis")
            page.select_option(".v-contrast", "p1")
            page.screenshot(path=str(HERE / "viewer.png"))
            page.locator(f'#list tr[data-path="{data_path}"] .alias-name').fill("e")
            page.fill("#prompt-input", "expr = where(e < 10, e * 32000, e)")
            page.click("#prompt-go")
            page.wait_for_selector("#info-title:text-is('@personal/expr.b2nd')")
            page.click("#meta .tab[data-tab=viewer]")
            page.wait_for_function("() => document.querySelector('.v-canvas').dataset.frame === '0'")
            page.select_option(".v-cmap", "magma")
            page.screenshot(path=str(HERE / "expression.png"))
            browser.close()
    finally:
        srv.close()
        shutil.rmtree(work, ignore_errors=True)
    print("screenshots in", HERE)


if __name__ == "__main__":
    main()
