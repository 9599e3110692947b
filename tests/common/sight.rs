//! Looking at a page the way a person does: at a window's size, with the keyboard, in a
//! screenshot, and through an accessibility audit. Finding an element by `data-testid`
//! says nothing about whether anyone can see it; these helpers do.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::browser::{Browser, Page, js};
use super::{WAIT, note};

/// A window size a test looks at the page in.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    /// A phone: the page's viewport meta tag applies and the window is touch-sized.
    pub mobile: bool,
}

pub const DESKTOP: Size = Size { name: "desktop", width: 1100, height: 650, mobile: false };
pub const PHONE: Size = Size { name: "phone", width: 390, height: 760, mobile: true };

/// Says why the element `selector` finds is not what a person sees, or `"displayed"`:
/// it must be rendered (no `display: none` or `visibility: hidden` on it or above it),
/// have a box, lie wholly inside the window and inside every scrolling box around it,
/// and be the topmost thing at its centre.
const DISPLAYED: &str = r#"(selector) => {
  const el = document.querySelector(selector);
  if (!el) return 'not in the page';
  const describe = (node) => node ? node.tagName.toLowerCase() + (node.id ? '#' + node.id : '') +
    (node.dataset && node.dataset.testid ? `[data-testid=${node.dataset.testid}]` : '') : 'nothing';
  if (!el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) {
    const style = getComputedStyle(el);
    return `not rendered (display: ${style.display}, visibility: ${style.visibility}, or hidden above it)`;
  }
  const r = el.getBoundingClientRect();
  if (r.width < 1 || r.height < 1) return `an empty box, ${r.width}×${r.height} px`;
  const [w, h] = [document.documentElement.clientWidth, document.documentElement.clientHeight];
  const box = `${Math.round(r.left)},${Math.round(r.top)} ${Math.round(r.width)}×${Math.round(r.height)}`;
  if (r.top < -0.5 || r.left < -0.5 || r.bottom > h + 0.5 || r.right > w + 0.5) {
    return `outside the ${w}×${h} window (its box: ${box})`;
  }
  for (let up = el.parentElement; up; up = up.parentElement) {
    const style = getComputedStyle(up);
    if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
    const u = up.getBoundingClientRect();
    if (r.top < u.top - 0.5 || r.bottom > u.bottom + 0.5 || r.left < u.left - 0.5 || r.right > u.right + 0.5) {
      return `scrolled out of ${describe(up)} (its box: ${box})`;
    }
  }
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (!hit || !(hit === el || el.contains(hit))) return `covered by ${describe(hit)}`;
  return 'displayed';
}"#;

/// Where this run's screenshots go; the test notes (printed by `scripts/test`) say so.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-client-screenshots");
    std::fs::create_dir_all(&dir).expect("make the screenshot folder");
    dir
}

impl Browser {
    /// Sizes the window `page` is shown in.
    pub async fn resize(&mut self, page: &Page, size: Size) {
        let metrics = json!({
            "width": size.width, "height": size.height, "deviceScaleFactor": 1, "mobile": size.mobile,
        });
        self.call(Some(&page.session), "Emulation.setDeviceMetricsOverride", metrics).await;
    }

    /// Shows the page as a system in dark mode (`true`) or light mode would.
    pub async fn dark(&mut self, page: &Page, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        let media = json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]});
        self.call(Some(&page.session), "Emulation.setEmulatedMedia", media).await;
    }

    /// `"displayed"`, or why a person would not see what `selector` finds.
    pub async fn sight(&mut self, page: &Page, selector: &str) -> String {
        let value = self.eval(page, &format!("({DISPLAYED})({})", js(selector))).await;
        value.as_str().map_or_else(|| value.to_string(), str::to_owned)
    }

    /// Waits until a person would see `what` (found by `selector`); the failure says why
    /// not and keeps a screenshot.
    pub async fn assert_displayed(&mut self, page: &Page, selector: &str, what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let sight = self.sight(page, selector).await;
            if sight == "displayed" {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let shot = self.screenshot(page, &format!("failed-{}", slug(what))).await;
                panic!("{what} ({selector}) is not displayed: {sight}; the window: {}", shot.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until nothing of `what` shows: it is absent, not rendered or has no box.
    pub async fn assert_not_displayed(&mut self, page: &Page, selector: &str, what: &str) {
        let gone = format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return true;
               const r = el.getBoundingClientRect();
               return !el.checkVisibility({{ visibilityProperty: true }}) || r.width < 1 || r.height < 1; }})()",
            js(selector)
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.eval(page, &gone).await != Value::Bool(true) {
            if tokio::time::Instant::now() > deadline {
                let shot = self.screenshot(page, &format!("failed-{}", slug(what))).await;
                panic!("{what} ({selector}) still shows; the window: {}", shot.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves what the window shows as `NAME.png` in [`screenshot_dir`].
    pub async fn screenshot(&mut self, page: &Page, name: &str) -> PathBuf {
        let shot = self.call(Some(&page.session), "Page.captureScreenshot", json!({"format": "png"})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("the screenshot is base64");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("save the screenshot");
        path
    }

    /// Types `text` into whatever has the keyboard focus.
    pub async fn type_text(&mut self, page: &Page, text: &str) {
        self.call(Some(&page.session), "Input.insertText", json!({"text": text})).await;
    }

    /// Presses and releases `key` (`Enter`, `Tab`, `Escape`), with Shift held if `shift`.
    pub async fn press(&mut self, page: &Page, key: &str, shift: bool) {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Tab" => (9, ""),
            "Escape" => (27, ""),
            other => panic!("no key code for {other}"),
        };
        let modifiers = if shift { 8 } else { 0 };
        for kind in ["keyDown", "keyUp"] {
            let mut event = json!({
                "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code, "modifiers": modifiers,
            });
            if kind == "keyDown" && !text.is_empty() {
                event["text"] = json!(text);
            }
            self.call(Some(&page.session), "Input.dispatchKeyEvent", event).await;
        }
    }

    /// Runs axe-core in the page and returns its serious and critical violations, one line
    /// each; `None` (and a note) when axe-core is not installed (`scripts/test` installs it).
    pub async fn accessibility_violations(&mut self, page: &Page) -> Option<Vec<String>> {
        let axe = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/axe/node_modules/axe-core/axe.min.js");
        let Ok(source) = std::fs::read_to_string(&axe) else {
            note(&format!(
                "SKIPPED the accessibility audit: no {} (scripts/test installs it)",
                axe.display()
            ));
            return None;
        };
        if self.eval(page, "typeof axe").await != "object" {
            self.eval(page, &source).await;
        }
        let run = "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`))";
        let found = self.eval(page, run).await;
        let lines = found.as_array().unwrap_or_else(|| panic!("axe-core did not run: {found}"));
        Some(lines.iter().map(|l| l.as_str().unwrap_or_default().to_owned()).collect())
    }

    /// Asserts that axe-core finds nothing serious or critical in `page` as it is now.
    pub async fn assert_accessible(&mut self, page: &Page, when: &str) {
        if let Some(violations) = self.accessibility_violations(page).await {
            assert!(violations.is_empty(), "accessibility violations {when}:\n{}", violations.join("\n"));
        }
    }

    /// Which elements the keyboard focus visits, in order, from the start of the page:
    /// `count` presses of Tab, each named by its test id (or tag and name).
    pub async fn tab_order(&mut self, page: &Page, count: usize) -> Vec<String> {
        // Tab starts from the focused element: a mark at the top of the page that Tab
        // itself skips makes it start from the beginning.
        let mark = "(() => { const m = document.createElement('span'); m.tabIndex = -1; m.id = 'tab-start';
            document.body.prepend(m); m.focus(); })()";
        self.eval(page, mark).await;
        let mut order = Vec::new();
        for _ in 0..count {
            self.press(page, "Tab", false).await;
            let name = "(() => { const e = document.activeElement;
                return e ? (e.dataset.testid || e.tagName.toLowerCase() + (e.name ? '.' + e.name : '')) : 'none'; })()";
            order.push(self.eval(page, name).await.as_str().unwrap_or("none").to_owned());
        }
        self.eval(page, "document.getElementById('tab-start').remove()").await;
        order
    }
}

/// A file-name-safe form of `what`.
fn slug(what: &str) -> String {
    what.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}
