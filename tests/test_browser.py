"""A real headless Chromium (Debian's, driven by Playwright) uses the web page."""
from playwright.sync_api import expect

from servers import api_env, api_server


def test_typing_a_text_shows_its_label(browser, small_model, tmp_path):
    s, result = small_model
    with api_server(tmp_path, api_env(s, tmp_path), wait="/ready") as api:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 422" not in m.text else None)
        page.goto(api.url + "/")
        expect(page.locator("#model")).to_contain_text(f"version {result.version}")  # (no eval: the page's CSP forbids it)

        page.fill("#text", "I love this airline, the crew was wonderful!")
        page.click("#go")
        page.wait_for_selector("#result:not([hidden])")
        assert page.text_content("#label") == "positive"
        assert page.locator("#bars .row").count() == 3
        # the answer explained: the text as the model saw it, each of its 8 words shaded, the lexicon's columns listed
        expect(page.locator("#words")).to_have_text("I love this airline, the crew was wonderful!")
        assert page.locator("#words .word").count() == 8
        assert page.locator("#features li").count() >= 1 and "logit of positive" in page.text_content("#why-note")
        titles = [page.locator("#words .word").nth(i).get_attribute("title") for i in range(8)]
        assert all(t.startswith("negative ") and "positive " in t for t in titles), titles

        page.fill("#text", "A dreadful, boring film; the plot made no sense and the acting was wooden.")
        page.click("#go")
        expect(page.locator("#why-note")).to_contain_text("off-domain head")
        assert page.locator("#words .word").count() == 14  # (the tweet model's words: one input of the off-domain head)
        page.screenshot(path=str(tmp_path / "predict.png"), full_page=True)

        page.fill("#text", "   ")
        page.click("#go")
        expect(page.locator("#error")).to_contain_text("empty")

        page.click("#batch")
        page.wait_for_selector("#batch-table:not([hidden])")
        assert page.locator("#batch-rows tr").count() == 3
        page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)
        assert (tmp_path / "predict.png").stat().st_size > 5_000
        assert not errors, errors  # no script errors, no CSP violations, no missing resources (only the deliberate 422)


def test_the_drift_report_is_one_click_from_the_page(browser, small_model, tmp_path):
    "`/` links the drift report of the live window; it renders in the browser with its plots, within its CSP."
    from sentiment_mlops.training.data import load_ood
    s, result = small_model
    env = api_env(s, tmp_path, SENTIMENT_MONITOR_CACHE_SECONDS="0", SENTIMENT_MONITOR_ALERT_WINDOWS="1")
    with api_server(tmp_path, env, wait="/ready") as api:
        reviews = load_ood().frame["text"].sample(300, random_state=5).tolist()
        for i in range(0, 300, 100): assert api.post("/predict/batch", json={"texts": reviews[i:i + 100]}).status_code == 200
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # (a CSP violation is one)
        page.goto(api.url + "/")
        page.click("#report-link")
        expect(page.locator("h1")).to_have_text("Drift report")
        expect(page.locator(".v")).to_have_text("alert")
        assert "off_domain" in page.content() and f"version {result.version}" in page.content()
        images = page.locator("img")
        assert images.count() >= 4
        assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(images.count()))
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert not errors, errors
