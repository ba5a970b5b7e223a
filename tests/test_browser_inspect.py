"""Real headless Chromium: open /inspect on a runs folder holding one tiny finished run; the statistics
table and figures render; a real mouse click on a spike in the raster and the neuron picker both redraw
the trace; an uploaded checkpoint works."""
import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)
from tests.test_inspect_cli import make_runs

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]

# Plotly's API only locates a spike (data -> page pixels); the click itself is a real mouse click.
LOCATE = """([title, avoid, want]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')]
      .find(g => (g.querySelector('.gtitle') || {}).textContent?.includes(title));
  if (!gd || !gd._fullLayout || !gd._fullData.length) return null;
  // _fullData: the decoded arrays (gd.data keeps plotly.py's base64 {dtype, bdata})
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, tr = gd._fullData[0];
  const box = gd.getBoundingClientRect();
  const n = tr.customdata.length;
  // the spike (of neuron `want`, or of any neuron not in `avoid`) farthest from its neighbours: an unambiguous target
  let best = null, bestGap = -1;
  for (let i = 0; i < n; i++) {
    const id = Number(tr.customdata[i]);
    if (avoid.includes(id) || (want !== null && id !== want)) continue;
    let gap = Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const dx = xa.d2p(tr.x[j]) - xa.d2p(tr.x[i]), dy = ya.d2p(tr.y[j]) - ya.d2p(tr.y[i]);
      gap = Math.min(gap, Math.hypot(dx, dy));
    }
    if (gap > bestGap) { bestGap = gap; best = i; }
  }
  if (best === null) return null;
  return {neuron: Number(tr.customdata[best]), gap: bestGap,
          x: box.left + xa._offset + xa.d2p(tr.x[best]), y: box.top + ya._offset + ya.d2p(tr.y[best])};
}"""


def click_spike(page, avoid: list[int], want: int | None = None) -> int:
    """Move the mouse onto a spike of neuron `want` (default: any neuron not in `avoid`) and click it;
    returns the clicked neuron."""
    page.locator(".js-plotly-plot .gtitle", has_text="fc1 raster").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    spot = page.evaluate(LOCATE, ["fc1 raster", avoid, want])
    assert spot is not None, f"no spike to click in the raster (avoid {avoid}, want {want})"
    page.mouse.move(spot["x"], spot["y"])           # hover first, as a person does: plotly clicks the hovered point
    page.wait_for_timeout(300)
    page.mouse.click(spot["x"], spot["y"])
    return int(spot["neuron"])


def trace_title(page) -> str:
    return page.locator(".js-plotly-plot .gtitle", has_text="membrane and spikes").text_content()


def test_inspect_page_renders_and_picks_a_neuron(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    r = make_runs(runs)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 3400})
        page.goto(f"{url}/inspect?run={r['mlp']}", wait_until="networkidle")
        page.get_by_text("SynOps per sample").first.wait_for(timeout=120_000)
        # charts draw once in view (the page is taller than the window): scroll down, then back up
        page.locator(".js-plotly-plot .gtitle", has_text="fc1: firing rate").wait_for(timeout=120_000)
        page.mouse.wheel(0, 4000)
        page.locator(".js-plotly-plot .gtitle", has_text="weight distribution at epoch 2").wait_for(timeout=60_000)
        page.mouse.wheel(0, -8000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "inspect_page.png"), full_page=True)
        joined = " | ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
        for t in ("fc1: firing rate", "fc1: CV of ISI", "fc1: Fano factor", "fc1 raster",
                  "membrane and spikes", "weight distribution at epoch 2"):
            assert t in joined, joined
        assert page.locator('[data-testid="stDataFrame"]').count() >= 2
        assert page.locator('[data-testid="stException"]').count() == 0
        box = page.get_by_label("neuron", exact=True)
        first = int(box.input_value())
        assert trace_title(page) == f"fc1 neuron {first}: membrane and spikes"
        # a real click on a spike of another neuron traces that neuron (and moves the picker)
        a = click_spike(page, avoid=[first])
        page.locator(".gtitle", has_text=f"fc1 neuron {a}: membrane and spikes").wait_for(timeout=60_000)
        assert box.input_value() == str(a)
        page.screenshot(path=str(ARTIFACTS / "inspect_neuron_clicked.png"), full_page=True)
        # the picker still works, and a later click on the neuron clicked before wins over it again
        other = 3 if a != 3 else 4
        box.fill(str(other))
        box.press("Enter")
        page.locator(".gtitle", has_text=f"fc1 neuron {other}: membrane and spikes").wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert click_spike(page, avoid=[other], want=a) == a
        page.locator(".gtitle", has_text=f"fc1 neuron {a}: membrane and spikes").wait_for(timeout=60_000)
        assert box.input_value() == str(a)
        assert page.locator('[data-testid="stException"]').count() == 0
        # upload the run's checkpoint file
        page.get_by_text("a checkpoint file").click()
        page.locator('input[type="file"]').set_input_files(str(r["store"].checkpoints(r["mlp"])[-1][2]))
        page.get_by_text("uploaded epoch00002.pt").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "inspect_upload.png"), full_page=True)
        browser.close()
