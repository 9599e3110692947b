//! The web client the relay serves at `GET /`: a page that speaks the main protocol
//! (PROTOCOL.md) with `RTCPeerConnection`, so people in a browser chat with people in a
//! terminal. Its three files are embedded in the binary; nothing is fetched from anywhere
//! else, and the Content-Security-Policy forbids inline script and any other origin.

/// One embedded file.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

const INDEX: Asset =
    Asset { content_type: "text/html; charset=utf-8", body: include_str!("../web/index.html") };
const SCRIPT: Asset =
    Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("../web/app.js") };
const STYLE: Asset =
    Asset { content_type: "text/css; charset=utf-8", body: include_str!("../web/style.css") };

/// The file served at `path` (the query already removed), if it is one of ours.
#[must_use]
pub fn asset(path: &str) -> Option<&'static Asset> {
    match path {
        "/" | "/index.html" => Some(&INDEX),
        "/app.js" => Some(&SCRIPT),
        "/style.css" => Some(&STYLE),
        _ => None,
    }
}

/// The headers that go with every file: the page may run only its own script and style,
/// talk only to this relay, and be framed by nobody. `host` (the request's, when it is a
/// plain host name) names the WebSocket origin for browsers whose `'self'` does not
/// cover `ws:`.
#[must_use]
pub fn headers(host: Option<&str>) -> String {
    let sockets = host
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; \
         connect-src 'self'{sockets}; media-src 'self' blob: mediastream:; img-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n\
         x-content-type-options: nosniff\r\n\
         referrer-policy: no-referrer\r\n\
         cache-control: no-cache\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_script_and_style() {
        let page = asset("/").expect("served").body;
        assert!(page.contains(r#"<script src="/app.js" defer></script>"#));
        assert!(page.contains(r#"<link rel="stylesheet" href="/style.css">"#));
        assert!(!page.contains("<script>"), "no inline script: the policy forbids it");
        assert!(!page.contains("http"), "nothing from another origin");
        for hook in ["message-input", "\"send\"", "members", "messages"] {
            assert!(page.contains(hook), "automation hook {hook} is on the page");
        }
        assert_eq!(asset("/nope"), None);
    }

    #[test]
    fn the_policy_names_the_relay_for_websockets_and_refuses_odd_hosts() {
        assert!(
            headers(Some("127.0.0.1:8787"))
                .contains("connect-src 'self' ws://127.0.0.1:8787 wss://127.0.0.1:8787;")
        );
        assert!(headers(Some("evil; script-src *")).contains("connect-src 'self';"));
        assert!(headers(None).contains("script-src 'self';"));
    }
}
