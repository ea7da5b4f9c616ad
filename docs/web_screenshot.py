"""The README's screenshot of the `zoo export --web` page: the page of a run, opened in
Debian's headless Chromium from a static server on 127.0.0.1, saved as a small PNG.

    python docs/web_screenshot.py runs/digits-vae docs/web-page.png

RUN_DIR must hold a `zoo export` ONNX file (fp32); the page is written to a temporary
folder with onnxruntime-web from tests/js/node_modules, so nothing is downloaded.
Needs what tests/test_web.py needs (see tests/web_helpers.INSTALL).
"""

import argparse
import glob
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout's root

from export import metadata  # noqa: E402
from export.web import write_web  # noqa: E402
from tests import web_helpers  # noqa: E402


def fp32_onnx(run_dir):
    for path in sorted(glob.glob(os.path.join(run_dir, "export", "*.onnx"))):
        if metadata.read_metadata(path).get("precision") == "fp32":
            return path
    raise SystemExit(f"{run_dir}/export has no fp32 ONNX file; run: zoo export {run_dir} --format onnx")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=700)
    args = parser.parse_args()
    reason = web_helpers.what_is_missing()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        write_web(fp32_onnx(args.run_dir), os.path.join(tmp, "web"), offline=True, ort_dist=web_helpers.ORT_WEB)
        driver = web_helpers.chromium(args.width, args.height)
        try:
            with web_helpers.static_server(os.path.join(tmp, "web")) as url:
                state = web_helpers.open_page(driver, url + "index.html")
                if state != "ready":
                    raise SystemExit(driver.execute_script("return window.genzoo.error"))
                # The walk's slider a third of the way along, as a visitor would leave it.
                driver.execute_script(
                    "const s = document.getElementById('walk-slider'); s.value = 5;"
                    "s.dispatchEvent(new Event('input'));"
                )
                png = os.path.join(tmp, "shot.png")
                driver.save_screenshot(png)
        finally:
            driver.quit()
        from PIL import Image

        # A 64-colour palette keeps the PNG small; the page is flat colours and greys.
        image = Image.open(png).convert("RGB").quantize(64)
        image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1000:.0f} kB, {image.width}x{image.height})")


if __name__ == "__main__":
    main()
